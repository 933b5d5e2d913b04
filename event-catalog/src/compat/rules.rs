//! The compatibility rules, applied by walking an event's old and new JSON Schemas side by
//! side: objects property by property, array items, map values and enum variants, following
//! `$ref`s (each pair of definitions once, so recursive types terminate).

use super::{Breaks, Finding, Mode, Profile, Rule, short_type};
use crate::model::CatalogEvent;
use crate::schema::{self, child};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Every incompatible change between two schemas of one event version.
pub(super) fn compare_event(
    old: &CatalogEvent,
    new: &CatalogEvent,
    mode: Mode,
    profile: Profile,
) -> Vec<Finding> {
    let mut walk = Walk {
        old_root: &old.schema,
        new_root: &new.schema,
        event: old,
        backward: matches!(mode, Mode::Backward | Mode::Full),
        forward: matches!(mode, Mode::Forward | Mode::Full),
        strict: profile == Profile::Strict,
        seen: HashSet::new(),
        findings: Vec::new(),
    };
    walk.compare(&old.schema, &new.schema, &Site::root());
    let mut findings = walk.findings;
    findings.sort_by(|a, b| {
        (&a.pointer, a.rule, a.breaks, &a.message).cmp(&(&b.pointer, b.rule, b.breaks, &b.message))
    });
    findings.dedup();
    findings
}

/// Where the walk is: pointers into both schemas and the payload path.
#[derive(Debug, Clone)]
struct Site {
    old: String,
    new: String,
    path: String,
}

impl Site {
    fn root() -> Self {
        Site {
            old: String::new(),
            new: String::new(),
            path: String::new(),
        }
    }

    /// The site of a schema keyword below this one, same payload path.
    fn keyword(&self, old: &str, new: &str) -> Self {
        Site {
            old: old.to_owned(),
            new: new.to_owned(),
            path: self.path.clone(),
        }
    }

    fn field(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// What the site is, for messages.
    fn what(&self) -> String {
        if self.path.is_empty() {
            "the payload".to_owned()
        } else {
            format!("`{}`", self.path)
        }
    }
}

/// A schema seen through `$ref`, `allOf: [x]` and `Option` (`anyOf` with `null`).
struct Norm<'a> {
    schema: &'a Value,
    pointer: String,
    target: Option<String>,
    nullable: bool,
    kind: Kind<'a>,
}

enum Kind<'a> {
    /// No constraint on the type.
    Any,
    /// A fixed set of values (`enum`, `const`, unit variants as `oneOf` of `const`s).
    Enum(Vec<&'a Value>),
    /// The non-null instance types of `type`.
    Types(Vec<&'a str>),
    /// Several alternatives (data-carrying enum variants), with their pointers.
    Union(Vec<(&'a Value, String)>),
}

/// `additionalProperties` of an object.
enum Additional<'a> {
    Open,
    Closed,
    Schema(&'a Value),
}

struct Walk<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    event: &'a CatalogEvent,
    backward: bool,
    forward: bool,
    strict: bool,
    seen: HashSet<(String, String)>,
    findings: Vec<Finding>,
}

impl<'a> Walk<'a> {
    fn report(&mut self, rule: Rule, breaks: Breaks, pointer: &str, site: &Site, message: String) {
        let enabled = match breaks {
            Breaks::Backward => self.backward,
            Breaks::Forward => self.forward,
        };
        if !enabled {
            return;
        }
        let hint = hint(rule, breaks, &site.path, self.event);
        self.findings.push(Finding {
            event: self.event.name.clone(),
            version: self.event.version,
            pointer: pointer.to_owned(),
            path: site.path.clone(),
            rule,
            breaks,
            message,
            hint,
        });
    }

    fn compare(&mut self, old: &'a Value, new: &'a Value, site: &Site) {
        let o = normalize(self.old_root, old, &site.old);
        let n = normalize(self.new_root, new, &site.new);
        if let (Some(ot), Some(nt)) = (&o.target, &n.target)
            && !self.seen.insert((ot.clone(), nt.clone()))
        {
            return;
        }
        let site = site.keyword(&o.pointer, &n.pointer);
        let at = n.pointer.clone();
        let what = site.what();
        if o.nullable && !n.nullable {
            self.report(
                Rule::NullableRemoved,
                Breaks::Backward,
                &at,
                &site,
                format!("{what} no longer accepts null"),
            );
        }
        if !o.nullable && n.nullable {
            self.report(
                Rule::NullableAdded,
                Breaks::Forward,
                &at,
                &site,
                format!("{what} now accepts null"),
            );
        }
        match (&o.kind, &n.kind) {
            (Kind::Any, Kind::Any) => {}
            (Kind::Any, _) => self.report(
                Rule::TypeNarrowed,
                Breaks::Backward,
                &at,
                &site,
                format!("{what} accepted any JSON value and now has a type"),
            ),
            (_, Kind::Any) => self.report(
                Rule::TypeWidened,
                Breaks::Forward,
                &at,
                &site,
                format!("{what} had a type and now accepts any JSON value"),
            ),
            (Kind::Enum(a), Kind::Enum(b)) => self.compare_enums(a, b, &at, &site),
            (Kind::Types(types), Kind::Enum(values)) => {
                self.types_and_values(types, values, true, &at, &site);
            }
            (Kind::Enum(values), Kind::Types(types)) => {
                self.types_and_values(types, values, false, &at, &site);
            }
            (Kind::Types(a), Kind::Types(b)) => self.compare_types(&o, &n, a, b, &site),
            (Kind::Union(a), Kind::Union(b)) => self.compare_unions(a, b, &site),
            (Kind::Union(_), _) | (_, Kind::Union(_)) => {
                for breaks in [Breaks::Backward, Breaks::Forward] {
                    self.report(
                        Rule::TypeChanged,
                        breaks,
                        &at,
                        &site,
                        format!("{what} changed between a union of alternatives and a single type"),
                    );
                }
            }
        }
    }

    /// A free type on one side and a fixed set of values on the other: `restricted` when the
    /// new schema is the one with values.
    fn types_and_values(
        &mut self,
        types: &[&str],
        values: &[&Value],
        restricted: bool,
        at: &str,
        site: &Site,
    ) {
        let what = site.what();
        let words = values_words(values);
        let any = types.join(" or ");
        let (rule, breaks, message) = if restricted {
            (
                Rule::TypeNarrowed,
                Breaks::Backward,
                format!("{what} was any {any} and is now one of {words}"),
            )
        } else {
            (
                Rule::TypeWidened,
                Breaks::Forward,
                format!("{what} was one of {words} and is now any {any}"),
            )
        };
        self.report(rule, breaks, at, site, message);
        if values.iter().any(|v| !accepts(types, json_type(v))) {
            // Some values are not even of the other side's type.
            let breaks = if restricted {
                Breaks::Forward
            } else {
                Breaks::Backward
            };
            self.report(
                Rule::TypeChanged,
                breaks,
                at,
                site,
                format!("{what} changed type between any {any} and the values {words}"),
            );
        }
    }

    fn compare_enums(&mut self, old: &[&Value], new: &[&Value], at: &str, site: &Site) {
        let what = site.what();
        for value in old.iter().filter(|v| !new.contains(v)) {
            self.report(
                Rule::EnumValueRemoved,
                Breaks::Backward,
                at,
                site,
                format!("{what} no longer accepts the value {value}"),
            );
        }
        for value in new.iter().filter(|v| !old.contains(v)) {
            self.report(
                Rule::EnumValueAdded,
                Breaks::Forward,
                at,
                site,
                format!("{what} gained the value {value}"),
            );
        }
    }

    fn compare_types(&mut self, o: &Norm<'a>, n: &Norm<'a>, a: &[&str], b: &[&str], site: &Site) {
        let at = n.pointer.as_str();
        let what = site.what();
        let lost: Vec<&str> = a.iter().copied().filter(|t| !accepts(b, t)).collect();
        let gained: Vec<&str> = b.iter().copied().filter(|t| !accepts(a, t)).collect();
        if lost.len() == a.len() && gained.len() == b.len() && !a.is_empty() {
            let message = format!(
                "{what} changed type from {} to {}",
                a.join(" or "),
                b.join(" or ")
            );
            self.report(
                Rule::TypeChanged,
                Breaks::Backward,
                at,
                site,
                message.clone(),
            );
            self.report(Rule::TypeChanged, Breaks::Forward, at, site, message);
            return;
        }
        for t in lost {
            self.report(
                Rule::TypeNarrowed,
                Breaks::Backward,
                at,
                site,
                format!("{what} no longer accepts {t} (now {})", b.join(" or ")),
            );
        }
        for t in gained {
            self.report(
                Rule::TypeWidened,
                Breaks::Forward,
                at,
                site,
                format!("{what} now also accepts {t} (was {})", a.join(" or ")),
            );
        }
        if a.contains(&"integer") && b.contains(&"integer") {
            self.compare_ranges(o.schema, n.schema, at, site);
        }
        if a.contains(&"object") && b.contains(&"object") {
            self.compare_objects(o.schema, n.schema, site);
        }
        if a.contains(&"array")
            && b.contains(&"array")
            && let (Some(oi), Some(ni)) = (o.schema.get("items"), n.schema.get("items"))
        {
            let items = Site {
                old: format!("{}/items", site.old),
                new: format!("{}/items", site.new),
                path: format!("{}[]", site.path),
            };
            self.compare(oi, ni, &items);
        }
    }

    fn compare_ranges(&mut self, old: &Value, new: &Value, at: &str, site: &Site) {
        let (old_min, old_max) = integer_range(old);
        let (new_min, new_max) = integer_range(new);
        let what = site.what();
        let words = |(min, max): (f64, f64)| format!("{min}..={max}");
        let old_words = words((old_min, old_max));
        let new_words = words((new_min, new_max));
        if new_min > old_min || new_max < old_max {
            self.report(
                Rule::TypeNarrowed,
                Breaks::Backward,
                at,
                site,
                format!("{what} integer range narrowed from {old_words} to {new_words}"),
            );
        }
        if new_min < old_min || new_max > old_max {
            self.report(
                Rule::TypeWidened,
                Breaks::Forward,
                at,
                site,
                format!("{what} integer range widened from {old_words} to {new_words}"),
            );
        }
    }

    fn compare_objects(&mut self, old: &'a Value, new: &'a Value, site: &Site) {
        let old_props: BTreeMap<&String, &Value> = schema::properties(old).into_iter().collect();
        let new_props: BTreeMap<&String, &Value> = schema::properties(new).into_iter().collect();
        let old_required: BTreeSet<&str> = schema::required(old).into_iter().collect();
        let new_required: BTreeSet<&str> = schema::required(new).into_iter().collect();
        let old_extra = additional(old);
        let new_extra = additional(new);
        let names: BTreeSet<&String> = old_props.keys().chain(new_props.keys()).copied().collect();
        for name in names {
            let field = Site {
                old: child(&child(&site.old, "properties"), name),
                new: child(&child(&site.new, "properties"), name),
                path: site.field(name),
            };
            let what = field.what();
            let old_req = old_required.contains(name.as_str());
            let new_req = new_required.contains(name.as_str());
            match (old_props.get(name), new_props.get(name)) {
                (Some(o), Some(n)) => {
                    if !old_req && new_req {
                        self.report(
                            Rule::OptionalMadeRequired,
                            Breaks::Backward,
                            &field.new,
                            &field,
                            format!("{what} was optional and is now required"),
                        );
                    }
                    if old_req && !new_req {
                        self.report(
                            Rule::RequiredMadeOptional,
                            Breaks::Forward,
                            &field.new,
                            &field,
                            format!("{what} was required and is now optional"),
                        );
                    }
                    self.compare(o, n, &field);
                }
                (Some(o), None) => self.property_removed(o, old_req, &new_extra, &field, site),
                (None, Some(n)) => self.property_added(n, new_req, &old_extra, &field, site),
                (None, None) => {}
            }
        }
        self.compare_additional(&old_extra, &new_extra, site);
    }

    /// A property only the old schema has.
    fn property_removed(
        &mut self,
        old: &'a Value,
        old_required: bool,
        new_extra: &Additional<'a>,
        field: &Site,
        site: &Site,
    ) {
        let what = field.what();
        match new_extra {
            Additional::Closed => self.report(
                Rule::PropertyRemoved,
                Breaks::Backward,
                &field.old,
                field,
                format!("{what} was removed and the new type denies unknown fields"),
            ),
            Additional::Schema(values) => {
                let extra = field.keyword(&field.old, &child(&site.new, "additionalProperties"));
                self.compare(old, values, &extra);
            }
            Additional::Open => {}
        }
        if old_required {
            self.report(
                Rule::PropertyRemoved,
                Breaks::Forward,
                &field.old,
                field,
                format!("{what} was removed and old readers require it"),
            );
        }
    }

    /// A property only the new schema has.
    fn property_added(
        &mut self,
        new: &'a Value,
        new_required: bool,
        old_extra: &Additional<'a>,
        field: &Site,
        site: &Site,
    ) {
        let what = field.what();
        if new_required {
            self.report(
                Rule::RequiredPropertyAdded,
                Breaks::Backward,
                &field.new,
                field,
                format!("{what} was added as required; old events do not have it"),
            );
        } else {
            match old_extra {
                Additional::Open if self.strict => self.report(
                    Rule::PropertyAdded,
                    Breaks::Backward,
                    &field.new,
                    field,
                    format!(
                        "{what} was added to an open object: by its schema, an old event may carry it with any value"
                    ),
                ),
                Additional::Schema(values) => {
                    let extra = field.keyword(&child(&site.old, "additionalProperties"), &field.new);
                    self.compare(values, new, &extra);
                }
                _ => {}
            }
        }
        if matches!(old_extra, Additional::Closed) {
            self.report(
                Rule::PropertyAdded,
                Breaks::Forward,
                &field.new,
                field,
                format!("{what} was added and old readers deny unknown fields"),
            );
        }
    }

    fn compare_additional(&mut self, old: &Additional<'a>, new: &Additional<'a>, site: &Site) {
        let at = child(&site.new, "additionalProperties");
        let what = site.what();
        let tightened = format!("{what} allows fewer additional properties");
        let loosened = format!("{what} allows more additional properties");
        match (old, new) {
            (Additional::Schema(o), Additional::Schema(n)) => {
                let values = Site {
                    old: child(&site.old, "additionalProperties"),
                    new: at,
                    path: format!("{}.<key>", site.path)
                        .trim_start_matches('.')
                        .to_owned(),
                };
                self.compare(o, n, &values);
            }
            (Additional::Schema(_), Additional::Closed) => {
                self.report(
                    Rule::AdditionalPropertiesTightened,
                    Breaks::Backward,
                    &at,
                    site,
                    tightened,
                );
            }
            (Additional::Closed, Additional::Schema(_)) => {
                self.report(
                    Rule::AdditionalPropertiesLoosened,
                    Breaks::Forward,
                    &at,
                    site,
                    loosened,
                );
            }
            (Additional::Open, Additional::Closed | Additional::Schema(_)) if self.strict => {
                self.report(
                    Rule::AdditionalPropertiesTightened,
                    Breaks::Backward,
                    &at,
                    site,
                    tightened,
                );
            }
            (Additional::Closed | Additional::Schema(_), Additional::Open) if self.strict => {
                self.report(
                    Rule::AdditionalPropertiesLoosened,
                    Breaks::Forward,
                    &at,
                    site,
                    loosened,
                );
            }
            _ => {}
        }
    }

    fn compare_unions(
        &mut self,
        old: &[(&'a Value, String)],
        new: &[(&'a Value, String)],
        site: &Site,
    ) {
        let sign = |root: &Value, alternatives: &[(&'a Value, String)]| {
            alternatives
                .iter()
                .enumerate()
                .map(|(i, (alt, ptr))| (signature(root, alt, i), (*alt, ptr.clone())))
                .collect::<BTreeMap<String, (&'a Value, String)>>()
        };
        let old_alts = sign(self.old_root, old);
        let new_alts = sign(self.new_root, new);
        let what = site.what();
        for (name, (alt, ptr)) in &old_alts {
            match new_alts.get(name) {
                Some((new_alt, new_ptr)) => {
                    let inner = site.keyword(ptr, new_ptr);
                    self.compare(alt, new_alt, &inner);
                }
                None => self.report(
                    Rule::EnumValueRemoved,
                    Breaks::Backward,
                    &site.new,
                    site,
                    format!("{what} no longer has the variant `{name}`"),
                ),
            }
        }
        for (name, (_, ptr)) in &new_alts {
            if !old_alts.contains_key(name) {
                self.report(
                    Rule::EnumValueAdded,
                    Breaks::Forward,
                    ptr,
                    site,
                    format!("{what} gained the variant `{name}`"),
                );
            }
        }
    }
}

fn normalize<'a>(root: &'a Value, schema: &'a Value, pointer: &str) -> Norm<'a> {
    let resolved = schema::resolve(root, schema, pointer);
    let (mut s, mut pointer, mut target) = (resolved.schema, resolved.pointer, resolved.target);
    if let Some(inner) = schema::unwrap_all_of(s) {
        let inner = schema::resolve(root, inner, &format!("{pointer}/allOf/0"));
        s = inner.schema;
        pointer = inner.pointer;
        target = inner.target.or(target);
    }
    let norm = |nullable, kind| Norm {
        schema: s,
        pointer: pointer.clone(),
        target: target.clone(),
        nullable,
        kind,
    };
    if let Some((keyword, alternatives)) = schema::alternatives(s) {
        let nullable = alternatives.iter().any(schema::is_null_schema);
        let others: Vec<(&Value, String)> = alternatives
            .iter()
            .enumerate()
            .filter(|(_, a)| !schema::is_null_schema(a))
            .map(|(i, a)| (a, format!("{pointer}/{keyword}/{i}")))
            .collect();
        if let Some(values) = const_values(&others) {
            return norm(nullable, Kind::Enum(values));
        }
        // `Option<T>`: `anyOf` of `T` and `null`. A one-variant enum stays a union.
        if let [(single, single_pointer)] = others.as_slice()
            && nullable
        {
            let mut inner = normalize(root, single, single_pointer);
            inner.nullable |= nullable;
            return inner;
        }
        return norm(nullable, Kind::Union(others));
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let nullable = values.contains(&Value::Null);
        return norm(
            nullable,
            Kind::Enum(values.iter().filter(|v| !v.is_null()).collect()),
        );
    }
    if let Some(value) = s.get("const") {
        return norm(value.is_null(), Kind::Enum(vec![value]));
    }
    let types = schema::types(s);
    let nullable = types.contains(&"null");
    let others: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    if others.is_empty() && !nullable {
        return norm(false, Kind::Any);
    }
    norm(nullable, Kind::Types(others))
}

fn const_values<'a>(alternatives: &[(&'a Value, String)]) -> Option<Vec<&'a Value>> {
    if alternatives.is_empty() {
        return None;
    }
    let mut values = Vec::new();
    for (alternative, _) in alternatives {
        if let Some(value) = alternative.get("const") {
            values.push(value);
        } else if let Some(list) = alternative.get("enum").and_then(Value::as_array) {
            values.extend(list);
        } else {
            return None;
        }
    }
    Some(values)
}

/// A name for a union alternative that survives reordering: its title, its definition, the
/// tag value of an internally tagged variant, the key of an externally tagged one, or else
/// its position.
fn signature(root: &Value, alternative: &Value, index: usize) -> String {
    if let Some(title) = alternative.get("title").and_then(Value::as_str) {
        return title.to_owned();
    }
    let resolved = schema::resolve(root, alternative, "");
    if let Some(target) = &resolved.target {
        return schema::definition_name(target).to_owned();
    }
    let s = resolved.schema;
    for (name, property) in schema::properties(s) {
        if let Some(value) = property.get("const") {
            return format!("{name}={value}");
        }
    }
    if let [only] = schema::required(s).as_slice()
        && schema::properties(s).len() == 1
    {
        return (*only).to_owned();
    }
    format!("#{index}")
}

fn additional(object: &Value) -> Additional<'_> {
    let extra = object
        .get("additionalProperties")
        .or_else(|| object.get("unevaluatedProperties"));
    match extra {
        Some(Value::Bool(false)) => Additional::Closed,
        Some(values @ Value::Object(map)) if !map.is_empty() => Additional::Schema(values),
        _ => Additional::Open,
    }
}

/// Whether a reader accepting `types` accepts an instance of type `t`.
fn accepts(types: &[&str], t: &str) -> bool {
    types.contains(&t) || (t == "integer" && types.contains(&"number"))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn values_words(values: &[&Value]) -> String {
    values
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The integer range a schema allows: `minimum`/`maximum`, within the range of its `format`.
fn integer_range(schema: &Value) -> (f64, f64) {
    #[expect(clippy::cast_precision_loss, reason = "bounds compared, not values")]
    let by_format = match schema.get("format").and_then(Value::as_str) {
        Some("int8") => (f64::from(i8::MIN), f64::from(i8::MAX)),
        Some("int16") => (f64::from(i16::MIN), f64::from(i16::MAX)),
        Some("int32") => (f64::from(i32::MIN), f64::from(i32::MAX)),
        Some("int64" | "int") => (i64::MIN as f64, i64::MAX as f64),
        Some("uint8") => (0.0, f64::from(u8::MAX)),
        Some("uint16") => (0.0, f64::from(u16::MAX)),
        Some("uint32") => (0.0, f64::from(u32::MAX)),
        Some("uint64" | "uint") => (0.0, u64::MAX as f64),
        _ => (f64::NEG_INFINITY, f64::INFINITY),
    };
    let min = schema.get("minimum").and_then(Value::as_f64);
    let max = schema.get("maximum").and_then(Value::as_f64);
    (
        min.map_or(by_format.0, |m| m.max(by_format.0)),
        max.map_or(by_format.1, |m| m.min(by_format.1)),
    )
}

/// How to make a change compatible, or else how to ship it as a new version.
fn hint(rule: Rule, breaks: Breaks, path: &str, event: &CatalogEvent) -> String {
    let field = if path.is_empty() {
        "the payload".to_owned()
    } else {
        format!("`{path}`")
    };
    let ty = short_type(&event.rust_type);
    let v = event.version;
    let bump = format!(
        "or keep `{ty}` as v{v} (renamed, e.g. `{ty}V{v}`) and add v{} with `previous = {ty}V{v}`",
        v + 1
    );
    let fix = match (rule, breaks) {
        (Rule::RequiredPropertyAdded, _) => {
            format!("make {field} optional (`Option<T>` with `#[serde(default)]`)")
        }
        (Rule::OptionalMadeRequired, _) => {
            format!("keep {field} optional (`Option<T>` with `#[serde(default)]`)")
        }
        (Rule::RequiredMadeOptional, _) => {
            format!("keep {field} required until every reader declares it optional")
        }
        (Rule::PropertyRemoved, Breaks::Backward) => {
            format!("keep {field}, or drop `#[serde(deny_unknown_fields)]` so readers ignore it")
        }
        (Rule::PropertyRemoved, Breaks::Forward) => format!(
            "keep {field}, or first make it optional (`Option<T>` with `#[serde(default)]`) in every reader"
        ),
        (Rule::PropertyAdded, Breaks::Forward) => {
            format!("drop `#[serde(deny_unknown_fields)]` from the old type before adding {field}")
        }
        (Rule::PropertyAdded, Breaks::Backward) => format!(
            "under the strict profile an open object may already carry {field}; judge with the serde profile if every writer is a serde type, or close the object (`#[serde(deny_unknown_fields)]`) from the start"
        ),
        (Rule::NullableRemoved, _) => format!("keep {field} an `Option<T>`"),
        (Rule::NullableAdded, _) => {
            format!("keep {field} non-optional until every reader declares it `Option<T>`")
        }
        (Rule::EnumValueRemoved, _) => {
            format!("keep the value of {field} (document it as no longer sent)")
        }
        (Rule::EnumValueAdded, _) => format!(
            "deploy readers that know the new value of {field} first, or give the enum a `#[serde(other)]` catch-all variant"
        ),
        (Rule::TypeChanged | Rule::TypeNarrowed, _) => {
            format!("keep the old type of {field}, or add a new field with the new type")
        }
        (Rule::TypeWidened, _) => {
            format!("keep the old type of {field} until every reader accepts the wider one")
        }
        (Rule::AdditionalPropertiesTightened, _) => {
            format!("keep {field} open: drop `#[serde(deny_unknown_fields)]`")
        }
        (Rule::AdditionalPropertiesLoosened, _) => {
            format!("keep {field} closed until every reader ignores unknown fields")
        }
        (Rule::VersionRemoved, _) => "keep the event".to_owned(),
    };
    format!("{fix}; {bump}")
}
