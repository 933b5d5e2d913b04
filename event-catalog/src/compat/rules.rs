//! The compatibility rules, applied by walking an event's old and new JSON Schemas side by
//! side: objects property by property, array items and tuple elements, map values and enum
//! variants, following `$ref`s (each pair of definitions once, so recursive types terminate).

use super::{Breaks, Finding, Mode, Profile, Rule, short_type};
use crate::model::CatalogEvent;
use crate::schema::{self, child};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// How deeply `$ref`s, `allOf`s and `Option`s are followed while normalizing one schema (a
/// `$ref` cycle stops there).
const MAX_DEPTH: usize = 32;

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

/// A subschema and its pointer.
type Located<'a> = (&'a Value, String);

/// A schema seen through `$ref`, `allOf` and `Option` (`anyOf` with `null`): the conjunction
/// of the schemas that apply.
struct Norm<'a> {
    /// Where findings about the schema as a whole point.
    pointer: String,
    /// Set when the schema was reached through a `$ref` or `allOf`: the walk compares each
    /// pair of these once, so recursive types terminate.
    key: Option<String>,
    /// Whether `null` is accepted beside `kind`.
    nullable: bool,
    kind: Kind<'a>,
    /// The schemas whose object, array, string and integer keywords apply.
    parts: Vec<Located<'a>>,
    /// Unions that hold beside the object's own properties (`#[serde(flatten)]` enums), in
    /// order, with their pointers.
    flattened: Vec<(String, Vec<Alt<'a>>)>,
}

impl<'a> Norm<'a> {
    /// Whether `null` is accepted: a schema without a type accepts it too.
    fn accepts_null(&self) -> bool {
        self.nullable || matches!(self.kind, Kind::Any)
    }

    /// The alternatives of a union or the values of an enum, for comparing them.
    fn alternatives(&self) -> Vec<Alt<'a>> {
        match &self.kind {
            Kind::Enum(values) => values
                .iter()
                .map(|v| Alt::Value(v, self.pointer.clone()))
                .collect(),
            Kind::Union(alternatives) => alternatives.clone(),
            Kind::Any | Kind::Types(_) => Vec::new(),
        }
    }
}

enum Kind<'a> {
    /// No constraint on the type.
    Any,
    /// A fixed set of values (`enum`, `const`, unit variants as `oneOf` of `const`s).
    Enum(Vec<&'a Value>),
    /// The non-null instance types of `type`.
    Types(Vec<&'a str>),
    /// Several alternatives (an enum with data-carrying variants, an untagged enum).
    Union(Vec<Alt<'a>>),
}

/// One alternative of a union: a value (a unit variant; an `enum` alternative gives one per
/// value) or a schema (a variant carrying data), with the alternative's pointer.
#[derive(Clone)]
enum Alt<'a> {
    Value(&'a Value, String),
    Schema(&'a Value, String),
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
        let o = normalize(self.old_root, old, &site.old, 0);
        let n = normalize(self.new_root, new, &site.new, 0);
        let site = site.keyword(&o.pointer, &n.pointer);
        let at = site.new.as_str();
        let what = site.what();
        // `null` is judged at every site, even of a pair of definitions compared before. A
        // side without a type accepts `null`: the type finding below says it all.
        let both_typed = !matches!(o.kind, Kind::Any) && !matches!(n.kind, Kind::Any);
        if both_typed && o.accepts_null() && !n.accepts_null() {
            let message = format!("{what} no longer accepts null");
            self.report(Rule::NullableRemoved, Breaks::Backward, at, &site, message);
        }
        if both_typed && !o.accepts_null() && n.accepts_null() {
            let message = format!("{what} now accepts null");
            self.report(Rule::NullableAdded, Breaks::Forward, at, &site, message);
        }
        if let (Some(ok), Some(nk)) = (&o.key, &n.key)
            && !self.seen.insert((ok.clone(), nk.clone()))
        {
            return;
        }
        match (&o.kind, &n.kind) {
            (Kind::Any, Kind::Any) => {}
            (Kind::Any, _) => self.report(
                Rule::TypeNarrowed,
                Breaks::Backward,
                at,
                &site,
                format!("{what} accepted any JSON value and now has a type"),
            ),
            (_, Kind::Any) => self.report(
                Rule::TypeWidened,
                Breaks::Forward,
                at,
                &site,
                format!("{what} had a type and now accepts any JSON value"),
            ),
            (Kind::Types(types), Kind::Enum(values)) => {
                self.types_and_values(types, values, true, &site);
            }
            (Kind::Enum(values), Kind::Types(types)) => {
                self.types_and_values(types, values, false, &site);
            }
            (Kind::Types(a), Kind::Types(b)) => self.compare_types(&o, &n, a, b, &site),
            (Kind::Enum(_) | Kind::Union(_), Kind::Enum(_) | Kind::Union(_)) => {
                self.compare_unions(&o.alternatives(), &n.alternatives(), &site);
            }
            (Kind::Union(_), Kind::Types(_)) | (Kind::Types(_), Kind::Union(_)) => {
                for breaks in [Breaks::Backward, Breaks::Forward] {
                    self.report(
                        Rule::TypeChanged,
                        breaks,
                        at,
                        &site,
                        format!("{what} changed between a union of alternatives and a single type"),
                    );
                }
            }
        }
        self.compare_flattened(&o.flattened, &n.flattened, &site);
    }

    /// A free type on one side and a fixed set of values on the other: `restricted` when the
    /// new schema is the one with values.
    fn types_and_values(
        &mut self,
        types: &[&str],
        values: &[&Value],
        restricted: bool,
        site: &Site,
    ) {
        let at = site.new.as_str();
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

    fn compare_types(&mut self, o: &Norm<'a>, n: &Norm<'a>, a: &[&str], b: &[&str], site: &Site) {
        let at = site.new.as_str();
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
        let both = |t: &str| a.contains(&t) && b.contains(&t);
        if both("integer") {
            self.compare_ranges(&o.parts, &n.parts, site);
        }
        if both("object") {
            self.compare_objects(&o.parts, &n.parts, site);
        }
        if both("array") {
            self.compare_arrays(&o.parts, &n.parts, site);
        }
        if both("string") {
            self.compare_limits(&o.parts, &n.parts, ["minLength", "maxLength"], site);
        }
    }

    fn compare_ranges(&mut self, old: &[Located<'a>], new: &[Located<'a>], site: &Site) {
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
                &site.new,
                site,
                format!("{what} integer range narrowed from {old_words} to {new_words}"),
            );
        }
        if new_min < old_min || new_max > old_max {
            self.report(
                Rule::TypeWidened,
                Breaks::Forward,
                &site.new,
                site,
                format!("{what} integer range widened from {old_words} to {new_words}"),
            );
        }
    }

    /// Array items (`Vec<T>`), tuple elements (`prefixItems`) and lengths.
    fn compare_arrays(&mut self, old: &[Located<'a>], new: &[Located<'a>], site: &Site) {
        let mut elements = vec![(None, format!("{}[]", site.path))];
        let tuple_len = |parts| {
            keyword(parts, "prefixItems")
                .and_then(|(prefix, _)| prefix.as_array())
                .map_or(0, Vec::len)
        };
        for i in 0..tuple_len(old).max(tuple_len(new)) {
            elements.push((Some(i), format!("{}[{i}]", site.path)));
        }
        for (index, path) in elements {
            if let (Some((o, old_at)), Some((n, new_at))) =
                (element(old, index), element(new, index))
            {
                let element = Site {
                    old: old_at,
                    new: new_at,
                    path,
                };
                self.compare(o, n, &element);
            }
        }
        self.compare_limits(old, new, ["minItems", "maxItems"], site);
    }

    /// Length limits (`keys`: the minimum and maximum keyword): tighter ones narrow, looser ones
    /// widen.
    fn compare_limits(
        &mut self,
        old: &[Located<'a>],
        new: &[Located<'a>],
        keys: [&str; 2],
        site: &Site,
    ) {
        let limits = |parts| {
            let limit = |key| keyword(parts, key).and_then(|(v, _)| v.as_u64());
            (limit(keys[0]).unwrap_or(0), limit(keys[1]))
        };
        let (old_min, old_max) = limits(old);
        let (new_min, new_max) = limits(new);
        // Whether maximum `b` is below maximum `a` (`None`: unbounded).
        let below = |a: Option<u64>, b: Option<u64>| b.is_some_and(|b| a.is_none_or(|a| b < a));
        let words = |min: u64, max: Option<u64>| match max {
            Some(max) => format!("{min}..={max}"),
            None => format!("{min}.."),
        };
        let what = site.what();
        let (old_words, new_words) = (words(old_min, old_max), words(new_min, new_max));
        let keys = keys.join("/");
        let change =
            |how: &str| format!("{what} length ({keys}) {how} from {old_words} to {new_words}");
        if new_min > old_min || below(old_max, new_max) {
            let message = change("narrowed");
            self.report(
                Rule::TypeNarrowed,
                Breaks::Backward,
                &site.new,
                site,
                message,
            );
        }
        if new_min < old_min || below(new_max, old_max) {
            let message = change("widened");
            self.report(Rule::TypeWidened, Breaks::Forward, &site.new, site, message);
        }
    }

    fn compare_objects(&mut self, old: &[Located<'a>], new: &[Located<'a>], site: &Site) {
        let old_props = properties(old);
        let new_props = properties(new);
        let old_required = required(old);
        let new_required = required(new);
        let old_extra = additional(old, &site.old);
        let new_extra = additional(new, &site.new);
        let names: BTreeSet<&String> = old_props.keys().chain(new_props.keys()).copied().collect();
        for name in names {
            let pointer = |props: &BTreeMap<&String, Located<'a>>, at: &str| {
                props.get(name).map_or_else(
                    || child(&child(at, "properties"), name),
                    |(_, pointer)| pointer.clone(),
                )
            };
            let field = Site {
                old: pointer(&old_props, &site.old),
                new: pointer(&new_props, &site.new),
                path: site.field(name),
            };
            let what = field.what();
            let old_req = old_required.contains(name.as_str());
            let new_req = new_required.contains(name.as_str());
            match (old_props.get(name), new_props.get(name)) {
                (Some((o, _)), Some((n, _))) => {
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
                (Some((o, _)), None) => self.property_removed(o, old_req, &new_extra, &field),
                (None, Some((n, _))) => self.property_added(n, new_req, &old_extra, &field),
                (None, None) => {}
            }
        }
        self.compare_additional(&old_extra, &new_extra, site);
    }

    /// A property only the old schema has; `new_extra`: the new `additionalProperties` and
    /// its pointer.
    fn property_removed(
        &mut self,
        old: &'a Value,
        old_required: bool,
        new_extra: &(Additional<'a>, String),
        field: &Site,
    ) {
        let what = field.what();
        match &new_extra.0 {
            Additional::Closed => self.report(
                Rule::PropertyRemoved,
                Breaks::Backward,
                &field.old,
                field,
                format!("{what} was removed and the new type denies unknown fields"),
            ),
            Additional::Schema(values) => {
                let extra = field.keyword(&field.old, &new_extra.1);
                self.compare(old, values, &extra);
            }
            // The mirror of an optional property added under the strict profile.
            Additional::Open if self.strict && !old_required => self.report(
                Rule::PropertyRemoved,
                Breaks::Forward,
                &field.old,
                field,
                format!(
                    "{what} was removed from an open object: by its schema, a new event may carry it with any value"
                ),
            ),
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

    /// A property only the new schema has; `old_extra`: the old `additionalProperties` and
    /// its pointer.
    fn property_added(
        &mut self,
        new: &'a Value,
        new_required: bool,
        old_extra: &(Additional<'a>, String),
        field: &Site,
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
        }
        match &old_extra.0 {
            Additional::Open if self.strict && !new_required => self.report(
                Rule::PropertyAdded,
                Breaks::Backward,
                &field.new,
                field,
                format!(
                    "{what} was added to an open object: by its schema, an old event may carry it with any value"
                ),
            ),
            // Old readers read the property as a map entry, and old events may carry it as one.
            Additional::Schema(values) => {
                let extra = field.keyword(&old_extra.1, &field.new);
                self.compare(values, new, &extra);
            }
            Additional::Closed => self.report(
                Rule::PropertyAdded,
                Breaks::Forward,
                &field.new,
                field,
                format!("{what} was added and old readers deny unknown fields"),
            ),
            Additional::Open => {}
        }
    }

    /// `old` and `new`: each side's `additionalProperties` and its pointer.
    fn compare_additional(
        &mut self,
        old: &(Additional<'a>, String),
        new: &(Additional<'a>, String),
        site: &Site,
    ) {
        let at = new.1.as_str();
        let what = site.what();
        let tightened = format!("{what} allows fewer additional properties");
        let loosened = format!("{what} allows more additional properties");
        match (&old.0, &new.0) {
            (Additional::Schema(o), Additional::Schema(n)) => {
                let values = Site {
                    old: old.1.clone(),
                    new: new.1.clone(),
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
                    at,
                    site,
                    tightened,
                );
            }
            (Additional::Closed, Additional::Schema(_)) => {
                self.report(
                    Rule::AdditionalPropertiesLoosened,
                    Breaks::Forward,
                    at,
                    site,
                    loosened,
                );
            }
            (Additional::Open, Additional::Closed | Additional::Schema(_)) if self.strict => {
                self.report(
                    Rule::AdditionalPropertiesTightened,
                    Breaks::Backward,
                    at,
                    site,
                    tightened,
                );
            }
            (Additional::Closed | Additional::Schema(_), Additional::Open) if self.strict => {
                self.report(
                    Rule::AdditionalPropertiesLoosened,
                    Breaks::Forward,
                    at,
                    site,
                    loosened,
                );
            }
            _ => {}
        }
    }

    /// Union alternatives and enum values, matched by [`signature`], not by position.
    fn compare_unions(&mut self, old: &[Alt<'a>], new: &[Alt<'a>], site: &Site) {
        let old_alts = signed(self.old_root, old);
        let new_alts = signed(self.new_root, new);
        let what = site.what();
        for (name, alt) in &old_alts {
            match (alt, new_alts.get(name)) {
                (Alt::Schema(o, old_at), Some(Alt::Schema(n, new_at))) => {
                    self.compare(o, n, &site.keyword(old_at, new_at));
                }
                (_, Some(_)) => {}
                (Alt::Value(value, _), None) => self.report(
                    Rule::EnumValueRemoved,
                    Breaks::Backward,
                    &site.new,
                    site,
                    format!("{what} no longer accepts the value {value}"),
                ),
                (Alt::Schema(..), None) => self.report(
                    Rule::EnumValueRemoved,
                    Breaks::Backward,
                    &site.new,
                    site,
                    format!("{what} no longer has the variant `{name}`"),
                ),
            }
        }
        for (name, alt) in &new_alts {
            if old_alts.contains_key(name) {
                continue;
            }
            let (at, message) = match alt {
                Alt::Value(value, at) => (at, format!("{what} gained the value {value}")),
                Alt::Schema(_, at) => (at, format!("{what} gained the variant `{name}`")),
            };
            self.report(Rule::EnumValueAdded, Breaks::Forward, at, site, message);
        }
    }

    /// The unions beside an object's own properties (flattened enums), entry by entry.
    fn compare_flattened(
        &mut self,
        old: &[(String, Vec<Alt<'a>>)],
        new: &[(String, Vec<Alt<'a>>)],
        site: &Site,
    ) {
        let what = site.what();
        for i in 0..old.len().max(new.len()) {
            match (old.get(i), new.get(i)) {
                (Some((old_at, o)), Some((new_at, n))) => {
                    self.compare_unions(o, n, &site.keyword(old_at, new_at));
                }
                (None, Some((new_at, _))) => self.report(
                    Rule::TypeNarrowed,
                    Breaks::Backward,
                    new_at,
                    site,
                    format!(
                        "{what} gained a flattened enum; old events carry none of its variants"
                    ),
                ),
                (Some((old_at, _)), None) => self.report(
                    Rule::TypeWidened,
                    Breaks::Forward,
                    old_at,
                    site,
                    format!("{what} lost a flattened enum; new events carry none of its variants"),
                ),
                (None, None) => {}
            }
        }
    }
}

/// `schema` at `pointer`, seen through `$ref`s, `allOf` and `Option`; `depth` counts the steps
/// followed so far.
fn normalize<'a>(root: &'a Value, schema: &'a Value, pointer: &str, depth: usize) -> Norm<'a> {
    let target = schema::ref_target(root, schema).filter(|_| depth < MAX_DEPTH);
    let Some((target, target_pointer)) = target else {
        return local(root, schema, pointer, depth);
    };
    let mut inner = normalize(root, target, &target_pointer, depth + 1);
    if schema::has_constraints(schema) || schema.get("allOf").is_some() {
        // Keywords beside the `$ref` apply too: an internally tagged newtype variant is its
        // tag beside the wrapped struct.
        let mut both = conjoin(local(root, schema, pointer, depth), inner);
        both.key = Some(pointer.to_owned());
        both
    } else {
        inner.key = Some(inner.pointer.clone());
        inner
    }
}

/// What `s`'s own keywords and `allOf` entries accept, `$ref` aside.
fn local<'a>(root: &'a Value, s: &'a Value, pointer: &str, depth: usize) -> Norm<'a> {
    let entries = s.get("allOf").and_then(Value::as_array);
    let entries = entries.map(Vec::as_slice).unwrap_or_default();
    if let [only] = entries
        && !schema::has_constraints(s)
        && depth < MAX_DEPTH
    {
        // A wrapper (draft-07's `$ref` with siblings): the entry alone.
        return normalize(root, only, &format!("{pointer}/allOf/0"), depth + 1);
    }
    let mut norm = own(root, s, pointer, depth);
    for (i, entry) in entries.iter().enumerate().take_while(|_| depth < MAX_DEPTH) {
        let entry = normalize(root, entry, &format!("{pointer}/allOf/{i}"), depth + 1);
        norm = conjoin(norm, entry);
        norm.key = Some(pointer.to_owned());
    }
    norm
}

/// What `s`'s own keywords accept, `$ref` and `allOf` aside.
fn own<'a>(root: &'a Value, s: &'a Value, pointer: &str, depth: usize) -> Norm<'a> {
    let norm = |nullable, kind| Norm {
        pointer: pointer.to_owned(),
        key: None,
        nullable,
        kind,
        parts: vec![(s, pointer.to_owned())],
        flattened: Vec::new(),
    };
    let types = schema::types(s);
    let typed_null = types.contains(&"null");
    let types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    if let Some((keyword, alternatives)) = schema::alternatives(s) {
        let nullable = alternatives.iter().any(schema::is_null_schema);
        let others: Vec<Located<'a>> = alternatives
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
            && depth < MAX_DEPTH
        {
            let mut inner = normalize(root, single, single_pointer, depth + 1);
            inner.nullable = true;
            return inner;
        }
        let alternatives = split_values(others);
        if types.is_empty() {
            return norm(nullable, Kind::Union(alternatives));
        }
        // A union beside the object's own properties: a `#[serde(flatten)]` enum.
        let mut object = norm(nullable || typed_null, Kind::Types(types));
        object.flattened.push((pointer.to_owned(), alternatives));
        return object;
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
    if types.is_empty() && !typed_null {
        return norm(false, Kind::Any);
    }
    norm(typed_null, Kind::Types(types))
}

/// Both `a` and `b` apply (`allOf`, `$ref` with siblings); the result points where `a` does.
fn conjoin<'a>(mut a: Norm<'a>, b: Norm<'a>) -> Norm<'a> {
    a.nullable = a.accepts_null() && b.accepts_null();
    a.kind = match (std::mem::replace(&mut a.kind, Kind::Any), b.kind) {
        (Kind::Any, kind) | (kind, Kind::Any) => kind,
        (Kind::Enum(values), _) | (_, Kind::Enum(values)) => Kind::Enum(values),
        (Kind::Types(x), Kind::Types(y)) => {
            let mut both: Vec<&str> = x.iter().copied().filter(|t| accepts(&y, t)).collect();
            for t in y {
                if accepts(&x, t) && !both.contains(&t) {
                    both.push(t);
                }
            }
            Kind::Types(both)
        }
        (Kind::Union(x), Kind::Union(y)) => {
            a.flattened.push((b.pointer, y));
            Kind::Union(x)
        }
        (Kind::Union(union), kind) => {
            a.flattened.push((a.pointer.clone(), union));
            kind
        }
        (kind, Kind::Union(union)) => {
            a.flattened.push((b.pointer, union));
            kind
        }
    };
    a.parts.extend(b.parts);
    a.flattened.extend(b.flattened);
    a
}

fn const_values<'a>(alternatives: &[Located<'a>]) -> Option<Vec<&'a Value>> {
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

/// Union alternatives, with `const` and `enum` ones as their values (unit variants).
fn split_values(alternatives: Vec<Located<'_>>) -> Vec<Alt<'_>> {
    let mut split = Vec::new();
    for (alternative, at) in alternatives {
        if let Some(value) = alternative.get("const") {
            split.push(Alt::Value(value, at));
        } else if let Some(list) = alternative.get("enum").and_then(Value::as_array) {
            split.extend(list.iter().map(|v| Alt::Value(v, at.clone())));
        } else {
            split.push(Alt::Schema(alternative, at));
        }
    }
    split
}

/// Alternatives by name: values by their JSON, schemas by [`signature`]; a name taken
/// before gets `#2`, `#3`... in order.
fn signed<'a, 'b>(root: &Value, alternatives: &'b [Alt<'a>]) -> BTreeMap<String, &'b Alt<'a>> {
    let mut signed = BTreeMap::new();
    for alternative in alternatives {
        let base = match alternative {
            Alt::Value(value, _) => value.to_string(),
            Alt::Schema(schema, _) => signature(root, schema),
        };
        let mut name = base.clone();
        let mut n = 1;
        while signed.contains_key(&name) {
            n += 1;
            name = format!("{base}#{n}");
        }
        signed.insert(name, alternative);
    }
    signed
}

/// A name for a union alternative that survives reordering: its title, the tag value of an
/// internally or adjacently tagged variant (read beside a `$ref` first: a newtype variant is
/// its tag beside the wrapped type), its definition, the key of an externally tagged variant,
/// or else the types it accepts (an untagged variant).
fn signature(root: &Value, alternative: &Value) -> String {
    if let Some(title) = alternative.get("title").and_then(Value::as_str) {
        return title.to_owned();
    }
    let tag = |s: &Value| {
        schema::properties(s)
            .into_iter()
            .find_map(|(name, property)| {
                property.get("const").map(|value| format!("{name}={value}"))
            })
    };
    if let Some(tag) = tag(alternative) {
        return tag;
    }
    let resolved = schema::resolve(root, alternative, "");
    if let Some(target) = &resolved.target {
        return schema::definition_name(target).to_owned();
    }
    let s = resolved.schema;
    if let [only] = schema::required(s).as_slice()
        && schema::properties(s).len() == 1
    {
        return (*only).to_owned();
    }
    let types = schema::types(s);
    if types.is_empty() {
        "any".to_owned()
    } else {
        types.join(" or ")
    }
}

/// The first of `parts` to have `keyword`: its value and pointer.
fn keyword<'a>(parts: &[Located<'a>], keyword: &str) -> Option<Located<'a>> {
    parts
        .iter()
        .find_map(|(s, at)| s.get(keyword).map(|value| (value, child(at, keyword))))
}

/// The schema of an array's element at `index` (`prefixItems`, else `items`), or of every
/// element (`None`: `items`).
fn element<'a>(parts: &[Located<'a>], index: Option<usize>) -> Option<Located<'a>> {
    if let Some(i) = index
        && let Some((prefix, at)) = keyword(parts, "prefixItems")
        && let Some(item) = prefix.get(i)
    {
        return Some((item, format!("{at}/{i}")));
    }
    keyword(parts, "items").filter(|(items, _)| items.is_object())
}

/// The properties of all parts, with their pointers (the first part naming one wins).
fn properties<'a>(parts: &[Located<'a>]) -> BTreeMap<&'a String, Located<'a>> {
    let mut properties = BTreeMap::new();
    for (s, at) in parts {
        for (name, property) in schema::properties(s) {
            properties
                .entry(name)
                .or_insert_with(|| (property, child(&child(at, "properties"), name)));
        }
    }
    properties
}

fn required<'a>(parts: &[Located<'a>]) -> BTreeSet<&'a str> {
    parts
        .iter()
        .flat_map(|(s, _)| schema::required(s))
        .collect()
}

/// The strictest `additionalProperties` of the parts and its pointer (where it would be, under
/// `at`, when every part is open).
fn additional<'a>(parts: &[Located<'a>], at: &str) -> (Additional<'a>, String) {
    let mut found = (Additional::Open, child(at, "additionalProperties"));
    for (s, part_at) in parts {
        let Some((extra, keyword)) = ["additionalProperties", "unevaluatedProperties"]
            .into_iter()
            .find_map(|k| s.get(k).map(|extra| (extra, k)))
        else {
            continue;
        };
        match extra {
            Value::Bool(false) => return (Additional::Closed, child(part_at, keyword)),
            Value::Object(map) if !map.is_empty() && matches!(found.0, Additional::Open) => {
                found = (Additional::Schema(extra), child(part_at, keyword));
            }
            _ => {}
        }
    }
    found
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

/// The integer range the parts of a schema allow: `minimum`/`maximum`, within the range of its `format`.
fn integer_range(parts: &[Located<'_>]) -> (f64, f64) {
    let get = |name| keyword(parts, name).map(|(value, _)| value);
    #[expect(clippy::cast_precision_loss, reason = "bounds compared, not values")]
    let by_format = match get("format").and_then(Value::as_str) {
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
    let min = get("minimum").and_then(Value::as_f64);
    let max = get("maximum").and_then(Value::as_f64);
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
