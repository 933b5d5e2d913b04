//! `#[event(...)]` and `#[union(...)]` parsed into typed values, one struct per level. Every
//! value keeps the tokens it came from, so later checks can point at them.

use crate::ctxt::Ctxt;
use crate::symbol::{
    AGGREGATE, CONSUMER, CONTAINER_KEYS, CRATE, DEPRECATED, DESCRIPTION, EVENT, FIELD_KEYS, NAME,
    PARTITION_KEY, PII, PREVIOUS, SOURCE, SUBJECT, Symbol, UNION, UNION_KEYS, VERSION, one_of,
};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Path, Token};

/// A key's value and the tokens of its key, so a repeat can point at the second key.
pub(crate) struct Attr<'c, T> {
    cx: &'c Ctxt,
    /// The helper attribute the key belongs to: `event` or `union`.
    attribute: Symbol,
    key: Symbol,
    value: Option<T>,
}

impl<'c, T> Attr<'c, T> {
    /// A key of `#[event(...)]`.
    fn none(cx: &'c Ctxt, key: Symbol) -> Self {
        Attr::none_in(cx, EVENT, key)
    }

    /// A key of another helper attribute.
    fn none_in(cx: &'c Ctxt, attribute: Symbol, key: Symbol) -> Self {
        Attr {
            cx,
            attribute,
            key,
            value: None,
        }
    }

    fn set<K: ToTokens>(&mut self, key_tokens: K, value: T) {
        if self.value.is_some() {
            let (attribute, key) = (self.attribute, self.key);
            self.cx.error_spanned_by(
                key_tokens,
                format!("duplicate {attribute} attribute `{key}`: remove one of them"),
            );
        } else {
            self.value = Some(value);
        }
    }

    fn get(self) -> Option<T> {
        self.value
    }
}

/// A version number, checked to be at least 1.
pub(crate) struct Version {
    pub(crate) value: u32,
}

/// `deprecated` or `deprecated = "why"`.
pub(crate) struct Deprecated {
    pub(crate) reason: Option<LitStr>,
}

/// The keys of `#[event(...)]` on the struct.
pub(crate) struct Container {
    pub(crate) name: Option<LitStr>,
    pub(crate) version: Option<Version>,
    pub(crate) source: Option<LitStr>,
    pub(crate) aggregate: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    pub(crate) deprecated: Option<Deprecated>,
    pub(crate) previous: Option<Path>,
    pub(crate) crate_path: Option<Path>,
}

impl Container {
    /// Reads every `#[event(...)]` on the struct, recording mistakes in `cx`.
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut name = Attr::none(cx, NAME);
        let mut version = Attr::none(cx, VERSION);
        let mut source = Attr::none(cx, SOURCE);
        let mut aggregate = Attr::none(cx, AGGREGATE);
        let mut description = Attr::none(cx, DESCRIPTION);
        let mut deprecated = Attr::none(cx, DEPRECATED);
        let mut previous = Attr::none(cx, PREVIOUS);
        let mut crate_path = Attr::none(cx, CRATE);

        for attr in attrs.iter().filter(|a| a.path() == EVENT) {
            if let Err(err) = require_list(attr) {
                cx.syn_error(err);
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                let key = &meta.path;
                if key == NAME {
                    // #[event(name = "order.created")]
                    if let Some(s) = string_value(cx, &meta, NAME, "\"order.created\"")? {
                        name.set(key, s);
                    }
                } else if key == VERSION {
                    // #[event(version = 2)]
                    if let Some(v) = version_value(cx, &meta)? {
                        version.set(key, v);
                    }
                } else if key == SOURCE {
                    // #[event(source = "orders-service")]
                    if let Some(s) = string_value(cx, &meta, SOURCE, "\"orders-service\"")? {
                        source.set(key, s);
                    }
                } else if key == AGGREGATE {
                    // #[event(aggregate = "order")]
                    if let Some(s) = string_value(cx, &meta, AGGREGATE, "\"order\"")? {
                        aggregate.set(key, s);
                    }
                } else if key == DESCRIPTION {
                    // #[event(description = "A customer placed an order.")]
                    if let Some(s) = string_value(cx, &meta, DESCRIPTION, "\"what happened\"")? {
                        description.set(key, s);
                    }
                } else if key == DEPRECATED {
                    // #[event(deprecated)] or #[event(deprecated = "use order.created v2")]
                    if meta.input.peek(Token![=]) {
                        if let Some(s) = string_value(cx, &meta, DEPRECATED, "\"why\"")? {
                            deprecated.set(key, Deprecated { reason: Some(s) });
                        }
                    } else {
                        deprecated.set(key, Deprecated { reason: None });
                    }
                } else if key == PREVIOUS {
                    // #[event(previous = OrderCreatedV1)]
                    if let Some(p) = previous_value(cx, &meta)? {
                        previous.set(key, p);
                    }
                } else if key == CRATE {
                    // #[event(crate = "::my_reexport::event_core")]
                    if let Some(p) = crate_value(cx, &meta)? {
                        crate_path.set(key, p);
                    }
                } else {
                    let hint = if FIELD_KEYS.iter().any(|k| key == *k) {
                        format!(
                            "`{}` is a field key: put it on a field, `#[event({})]`",
                            key.to_token_stream(),
                            key.to_token_stream()
                        )
                    } else {
                        format!(
                            "unknown event attribute `{}`: expected {}",
                            key.to_token_stream(),
                            one_of(CONTAINER_KEYS)
                        )
                    };
                    cx.error_spanned_by(key, hint);
                    skip_value(&meta)?;
                }
                Ok(())
            });
            if let Err(err) = result {
                cx.syn_error(err);
            }
        }

        Container {
            name: name.get(),
            version: version.get(),
            source: source.get(),
            aggregate: aggregate.get(),
            description: description.get(),
            deprecated: deprecated.get(),
            previous: previous.get(),
            crate_path: crate_path.get(),
        }
    }
}

/// The keys of `#[event(...)]` on a field. The flags keep their tokens for error spans.
pub(crate) struct Field {
    pub(crate) partition_key: Option<Path>,
    pub(crate) pii: Option<Path>,
    pub(crate) subject: Option<Path>,
}

impl Field {
    /// Reads every `#[event(...)]` on a field, recording mistakes in `cx`.
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut partition_key = Attr::none(cx, PARTITION_KEY);
        let mut pii = Attr::none(cx, PII);
        let mut subject = Attr::none(cx, SUBJECT);
        for attr in attrs.iter().filter(|a| a.path() == EVENT) {
            if let Err(err) = require_list(attr) {
                cx.syn_error(err);
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                let key = &meta.path;
                if key == PARTITION_KEY {
                    // #[event(partition_key)]
                    flag_value(cx, &meta, PARTITION_KEY)?;
                    partition_key.set(key, key.clone());
                } else if key == PII {
                    // #[event(pii)]
                    flag_value(cx, &meta, PII)?;
                    pii.set(key, key.clone());
                } else if key == SUBJECT {
                    // #[event(subject)]
                    flag_value(cx, &meta, SUBJECT)?;
                    subject.set(key, key.clone());
                } else {
                    let hint = if CONTAINER_KEYS.iter().any(|k| key == *k) {
                        format!(
                            "`{}` is a struct key: put it in the `#[event(...)]` above the struct",
                            key.to_token_stream()
                        )
                    } else {
                        format!(
                            "unknown event field attribute `{}`: expected {}",
                            key.to_token_stream(),
                            one_of(FIELD_KEYS)
                        )
                    };
                    cx.error_spanned_by(key, hint);
                    skip_value(&meta)?;
                }
                Ok(())
            });
            if let Err(err) = result {
                cx.syn_error(err);
            }
        }
        Field {
            partition_key: partition_key.get(),
            pii: pii.get(),
            subject: subject.get(),
        }
    }
}

/// The keys of `#[union(...)]` on an enum deriving `EventUnion`.
pub(crate) struct Union {
    pub(crate) consumer: Option<LitStr>,
    pub(crate) crate_path: Option<Path>,
}

impl Union {
    /// Reads every `#[union(...)]` on the enum, recording mistakes in `cx`.
    pub(crate) fn from_ast(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut consumer = Attr::none_in(cx, UNION, CONSUMER);
        let mut crate_path = Attr::none_in(cx, UNION, CRATE);

        for attr in attrs.iter().filter(|a| a.path() == UNION) {
            if let Err(err) = require_union_list(attr) {
                cx.syn_error(err);
                continue;
            }
            let result = attr.parse_nested_meta(|meta| {
                let key = &meta.path;
                if key == CONSUMER {
                    // #[union(consumer = "fulfillment")]
                    if let Some(s) = string_value(cx, &meta, CONSUMER, "\"fulfillment\"")? {
                        consumer.set(key, s);
                    }
                } else if key == CRATE {
                    // #[union(crate = "::my_reexport::event_core")]
                    if let Some(p) = crate_value(cx, &meta)? {
                        crate_path.set(key, p);
                    }
                } else {
                    let hint = if CONTAINER_KEYS.iter().any(|k| key == *k) {
                        format!(
                            "`{}` is a key of `#[event(...)]` on an event struct; \
                             `#[union(...)]` takes {}",
                            key.to_token_stream(),
                            one_of(UNION_KEYS)
                        )
                    } else {
                        format!(
                            "unknown union attribute `{}`: expected {}",
                            key.to_token_stream(),
                            one_of(UNION_KEYS)
                        )
                    };
                    cx.error_spanned_by(key, hint);
                    skip_value(&meta)?;
                }
                Ok(())
            });
            if let Err(err) = result {
                cx.syn_error(err);
            }
        }

        Union {
            consumer: consumer.get(),
            crate_path: crate_path.get(),
        }
    }
}

/// A variant of a union takes no keys: the event's own `#[event(...)]` says everything.
pub(crate) fn reject_variant_attrs(cx: &Ctxt, attrs: &[Attribute]) {
    for attr in attrs.iter().filter(|a| a.path() == UNION) {
        cx.error_spanned_by(
            attr,
            "a union variant takes no `#[union(...)]` keys: put them above the enum, \
             and the event's keys in `#[event(...)]` on its struct",
        );
    }
}

/// `#[union]` and `#[union = ...]` are mistakes: the keys go in parentheses.
fn require_union_list(attr: &Attribute) -> syn::Result<()> {
    match &attr.meta {
        syn::Meta::List(_) => Ok(()),
        other => Err(syn::Error::new_spanned(
            other,
            "expected `#[union(key = value, ...)]`, e.g. `#[union(consumer = \"fulfillment\")]`",
        )),
    }
}

/// `#[event]` and `#[event = ...]` are mistakes: the keys go in parentheses.
fn require_list(attr: &Attribute) -> syn::Result<()> {
    match &attr.meta {
        syn::Meta::List(_) => Ok(()),
        other => Err(syn::Error::new_spanned(
            other,
            "expected `#[event(key = value, ...)]`, e.g. `#[event(name = \"order.created\")]`",
        )),
    }
}

/// The value after `=` as an expression, or an error if there is no `=`.
fn expr_value(
    cx: &Ctxt,
    meta: &ParseNestedMeta,
    key: Symbol,
    example: &str,
) -> syn::Result<Option<Expr>> {
    if !meta.input.peek(Token![=]) {
        cx.error_spanned_by(
            &meta.path,
            format!("`{key}` takes a value: write `{key} = {example}`"),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    Ok(Some(ungroup(meta.value()?.parse()?)))
}

/// A value that came through a `macro_rules!` fragment (`$name:literal`) arrives wrapped in
/// an invisible group; look through it.
fn ungroup(mut expr: Expr) -> Expr {
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    expr
}

/// `key = "string"`.
fn string_value(
    cx: &Ctxt,
    meta: &ParseNestedMeta,
    key: Symbol,
    example: &str,
) -> syn::Result<Option<LitStr>> {
    let Some(expr) = expr_value(cx, meta, key, example)? else {
        return Ok(None);
    };
    if let Expr::Lit(ExprLit {
        lit: Lit::Str(s), ..
    }) = expr
    {
        return Ok(Some(s));
    }
    cx.error_spanned_by(
        expr,
        format!("`{key}` takes a string literal: write `{key} = {example}`"),
    );
    Ok(None)
}

/// `version = N` with N an integer from 1 to `u32::MAX`.
fn version_value(cx: &Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<Version>> {
    let Some(expr) = expr_value(cx, meta, VERSION, "1")? else {
        return Ok(None);
    };
    let message = match &expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => match int.base10_parse::<u32>() {
            Ok(0) => "event versions start at 1: write `version = 1`".to_owned(),
            Ok(value) => {
                return Ok(Some(Version { value }));
            }
            Err(_) => format!("`version` must fit in a u32, up to {}", u32::MAX),
        },
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => format!(
            "`version` takes an integer, not a string: write `version = {}`",
            s.value()
        ),
        _ => "`version` takes an integer literal of at least 1, like `version = 2`".to_owned(),
    };
    cx.error_spanned_by(expr, message);
    Ok(None)
}

/// `previous = OrderCreatedV1`: a path to a type.
fn previous_value(cx: &Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<Path>> {
    let Some(expr) = expr_value(cx, meta, PREVIOUS, "OrderCreatedV1")? else {
        return Ok(None);
    };
    match expr {
        Expr::Path(p) if p.qself.is_none() => Ok(Some(p.path)),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let hint = format!(
                "`previous` takes the type itself, not a string: write `previous = {}`",
                s.value()
            );
            cx.error_spanned_by(s, hint);
            Ok(None)
        }
        other => {
            cx.error_spanned_by(
                other,
                "`previous` takes the type of the previous version: write `previous = OrderCreatedV1`",
            );
            Ok(None)
        }
    }
}

/// `crate = "path"` (as serde spells it) or `crate = path`.
fn crate_value(cx: &Ctxt, meta: &ParseNestedMeta) -> syn::Result<Option<Path>> {
    let Some(expr) = expr_value(cx, meta, CRATE, "\"::event_core\"")? else {
        return Ok(None);
    };
    match expr {
        Expr::Path(p) if p.qself.is_none() => Ok(Some(p.path)),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            let path = s.parse::<Path>().ok();
            if path.is_none() {
                cx.error_spanned_by(s, "`crate` takes a path, like `crate = \"::event_core\"`");
            }
            Ok(path)
        }
        other => {
            cx.error_spanned_by(
                other,
                "`crate` takes a path, like `crate = \"::event_core\"`",
            );
            Ok(None)
        }
    }
}

/// A flag takes no value: `#[event(pii)]`, not `#[event(pii = true)]`.
fn flag_value(cx: &Ctxt, meta: &ParseNestedMeta, key: Symbol) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        cx.error_spanned_by(
            &meta.path,
            format!("`{key}` is a flag and takes no value: write `#[event({key})]`"),
        );
        skip_value(meta)?;
    }
    Ok(())
}

/// Consumes whatever value follows an unknown or malformed key, so parsing goes on and one
/// build reports every mistake.
pub(crate) fn skip_value(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _content: TokenStream;
        let content;
        syn::parenthesized!(content in meta.input);
        _content = content.parse()?;
    }
    Ok(())
}
