//! The model of an `EventUnion` derive input: an enum with one variant per event, each
//! carrying its event as a single unnamed field.

use crate::attr;
use crate::ctxt::Ctxt;
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::{Data, DeriveInput, Fields, Ident, Type};

/// An enum deriving `EventUnion`.
pub(crate) struct Union<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) attrs: attr::Union,
    /// The well-formed variants, in declaration order; the others are reported.
    pub(crate) variants: Vec<Variant<'a>>,
}

/// A variant `Name(Event)`.
pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a Ident,
    /// The event type it carries.
    pub(crate) ty: &'a Type,
}

impl<'a> Union<'a> {
    /// Builds the model, recording in `cx` every shape the derive cannot accept.
    ///
    /// Returns `None` when the input is no enum: there is nothing more to check then.
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let attrs = attr::Union::from_ast(cx, &input.attrs);
        check_generics(cx, input);
        let data = match &input.data {
            Data::Enum(data) => data,
            Data::Struct(data) => {
                cx.error_spanned_by(
                    data.struct_token,
                    "an event union is an enum with one variant per event, like \
                     `enum OrderEvents { Created(OrderCreated), Paid(OrderPaid) }`; \
                     a single event struct derives `DomainEvent`",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "an event union is an enum with one variant per event, like \
                     `enum OrderEvents { Created(OrderCreated), Paid(OrderPaid) }`, \
                     not a Rust `union`",
                );
                return None;
            }
        };
        if data.variants.is_empty() {
            cx.error_spanned_by(
                &input.ident,
                format!(
                    "the event union `{}` has no variants: add one per event it accepts, \
                     like `Created(OrderCreated)`",
                    input.ident
                ),
            );
        }
        let variants = data
            .variants
            .iter()
            .filter_map(|variant| {
                attr::reject_variant_attrs(cx, &variant.attrs);
                let ty = single_field(cx, variant)?;
                Some(Variant {
                    ident: &variant.ident,
                    ty,
                })
            })
            .collect();
        Some(Union {
            ident: &input.ident,
            attrs,
            variants,
        })
    }
}

/// The type of the variant's one unnamed field, or `None` after reporting another shape.
fn single_field<'a>(cx: &Ctxt, variant: &'a syn::Variant) -> Option<&'a Type> {
    let ident = &variant.ident;
    match &variant.fields {
        Fields::Unnamed(fields) if fields.unnamed.len() == 1 => Some(&fields.unnamed[0].ty),
        Fields::Unnamed(fields) if fields.unnamed.is_empty() => {
            cx.error_spanned_by(
                fields,
                format!(
                    "variant `{ident}` carries no event: write `{ident}(EventType)` with the \
                     event's struct inside"
                ),
            );
            None
        }
        Fields::Unnamed(fields) => {
            // Point at the fields after the first: they are what has to go.
            let extra: Punctuated<&syn::Field, syn::Token![,]> =
                fields.unnamed.iter().skip(1).collect();
            cx.error_spanned_by(
                extra.into_token_stream(),
                format!(
                    "variant `{ident}` carries {} fields, but a union variant carries exactly \
                     one event: write `{ident}(EventType)` and give each other event a variant \
                     of its own",
                    fields.unnamed.len()
                ),
            );
            None
        }
        Fields::Named(fields) => {
            let hint = match fields.named.first() {
                Some(field) if fields.named.len() == 1 => format!(
                    "write `{ident}({})`",
                    field.ty.to_token_stream().to_string().replace(' ', "")
                ),
                _ => format!("write `{ident}(EventType)` and put the fields in the event's struct"),
            };
            cx.error_spanned_by(
                fields,
                format!(
                    "a union variant carries its event as one unnamed field, not named \
                     fields: {hint}"
                ),
            );
            None
        }
        Fields::Unit => {
            cx.error_spanned_by(
                ident,
                format!(
                    "variant `{ident}` carries no event: write `{ident}(EventType)` with the \
                     event's struct inside"
                ),
            );
            None
        }
    }
}

/// A union decodes into concrete event types: no type, lifetime or const parameters.
fn check_generics(cx: &Ctxt, input: &DeriveInput) {
    let generics = &input.generics;
    if let Some(lifetime) = generics.lifetimes().next() {
        cx.error_spanned_by(
            lifetime,
            "an event union owns its events: remove the lifetime parameter",
        );
    }
    if let Some(param) = generics.type_params().next() {
        cx.error_spanned_by(
            param,
            "an event union cannot be generic: it decodes into concrete event types; \
             name each event type in its variant, like `Created(OrderCreated)`",
        );
    }
    if let Some(param) = generics.const_params().next() {
        cx.error_spanned_by(
            param,
            "an event union cannot be generic: it decodes into concrete event types; \
             remove the const parameter",
        );
    }
}
