//! The model of a `DomainEvent` derive input, built from the syntax tree with its original
//! tokens kept for spans.

use crate::attr;
use crate::ctxt::Ctxt;
use crate::name::{self, DefaultNameError};
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Ident, Type};

/// A struct deriving `DomainEvent`.
pub(crate) struct Event<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: attr::Container,
    /// The event name, given or derived; `None` when it could not be derived (reported).
    pub(crate) name: Option<String>,
    pub(crate) fields: Vec<Field<'a>>,
    pub(crate) original: &'a DeriveInput,
}

/// A named field of the event struct.
pub(crate) struct Field<'a> {
    pub(crate) member: &'a Ident,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: attr::Field,
    /// The field's name in JSON, after serde's renames.
    pub(crate) json_name: String,
}

impl<'a> Event<'a> {
    /// Builds the model, recording in `cx` every shape the derive cannot accept.
    ///
    /// Returns `None` when the input is no struct with named fields: there is nothing more to
    /// check then.
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::Container::from_ast(cx, &input.attrs);
        check_generics(cx, input);
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => &named.named,
                Fields::Unnamed(unnamed) => {
                    cx.error_spanned_by(
                        unnamed,
                        "an event payload is a JSON object: use named fields, \
                         `struct Name { field: Type }`, not a tuple struct",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "an event payload is a JSON object: give the struct named fields, \
                         `struct Name { field: Type }`, even if only one",
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "an event is a struct with named fields; to subscribe to several events \
                     use `#[derive(EventUnion)]` on the enum",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "an event is a struct with named fields, not a union",
                );
                return None;
            }
        };
        let json_names = json_names(input);
        let fields = fields
            .iter()
            .enumerate()
            .filter_map(|(i, field)| {
                let member = field.ident.as_ref()?;
                Some(Field {
                    member,
                    ty: &field.ty,
                    attrs: attr::Field::from_ast(cx, &field.attrs),
                    json_name: json_names
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| member.unraw().to_string()),
                })
            })
            .collect();
        let name = resolve_name(cx, input, &attrs);
        Some(Event {
            ident: &input.ident,
            attrs,
            name,
            fields,
            original: input,
        })
    }
}

/// An event has one name and one schema: no type or lifetime parameters.
fn check_generics(cx: &Ctxt, input: &DeriveInput) {
    let generics = &input.generics;
    if let Some(lifetime) = generics.lifetimes().next() {
        cx.error_spanned_by(
            lifetime,
            "an event owns its data: remove the lifetime parameter and use owned types \
             (`String`, not `&str`)",
        );
    }
    if let Some(param) = generics.type_params().next() {
        cx.error_spanned_by(
            param,
            "an event cannot be generic: its name and schema are fixed; \
             define one event struct per concrete payload",
        );
    }
    if let Some(param) = generics.const_params().next() {
        cx.error_spanned_by(
            param,
            "an event cannot be generic: its name and schema are fixed; \
             define one event struct per concrete payload",
        );
    }
}

/// The event name: the `name` key, or the default derived from the type name.
fn resolve_name(cx: &Ctxt, input: &DeriveInput, attrs: &attr::Container) -> Option<String> {
    if let Some(name) = &attrs.name {
        return Some(name.value());
    }
    let aggregate = attrs.aggregate.as_ref().map(syn::LitStr::value);
    let type_name = input.ident.unraw().to_string();
    let version = attrs.version.as_ref().map_or(1, |v| v.value);
    match name::default_name(&type_name, aggregate.as_deref(), version) {
        Ok(name) => Some(name),
        Err(DefaultNameError::OneWord { word }) => {
            cx.error_spanned_by(
                &input.ident,
                format!(
                    "the one-word type name `{type_name}` gives no event name: add \
                     `#[event(name = \"context.{word}\")]` or an `aggregate`"
                ),
            );
            None
        }
        Err(DefaultNameError::NothingAfterAggregate) => {
            cx.error_spanned_by(
                &input.ident,
                format!(
                    "the type name `{type_name}` says nothing beyond its aggregate: add \
                     `#[event(name = \"...\")]` or name the fact, like `{type_name}Created`"
                ),
            );
            None
        }
    }
}

/// The JSON names of the fields, in order, as serde serializes them.
///
/// Mistakes in `#[serde(...)]` are serde's to report; here they only mean the Rust names are
/// used.
fn json_names(input: &DeriveInput) -> Vec<String> {
    use serde_derive_internals::{Ctxt, Derive, ast};
    let cx = Ctxt::new();
    let names = ast::Container::from_ast(&cx, input, Derive::Serialize)
        .map(|container| match container.data {
            ast::Data::Struct(_, fields) => fields
                .iter()
                .map(|f| f.attrs.name().serialize_name().to_owned())
                .collect(),
            ast::Data::Enum(_) => Vec::new(),
        })
        .unwrap_or_default();
    let _ = cx.check();
    names
}
