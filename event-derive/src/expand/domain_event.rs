//! The `DomainEvent` impl, its descriptor and its registration.

use super::default_crate_path;
use crate::ast::{Event, Field};
use crate::doc;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Type;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

pub(crate) fn expand(event: &Event) -> TokenStream {
    let krate = event
        .attrs
        .crate_path
        .clone()
        .unwrap_or_else(default_crate_path);
    let p = quote!(#krate::__private);
    let ident = event.ident;
    let name = event.name.as_deref().expect("checked: the name resolved");
    let version = event.attrs.version.as_ref().map_or(1, |v| v.value);
    let type_name = ident.unraw().to_string();

    let some_str = |value: Option<String>| match value {
        Some(s) => quote!(#p::Some(#s)),
        None => quote!(#p::None),
    };
    let description = match &event.attrs.description {
        Some(lit) => quote!(#p::Some(#lit)),
        None => match doc::description(&event.original.attrs) {
            Some(text) => quote!(#p::Some(#text)),
            None => quote!(#p::None),
        },
    };
    let source = some_str(event.attrs.source.as_ref().map(syn::LitStr::value));
    let aggregate = some_str(event.attrs.aggregate.as_ref().map(syn::LitStr::value));
    let partition_field = event
        .fields
        .iter()
        .find(|f| f.attrs.partition_key.is_some());
    let partition_key_name = some_str(partition_field.map(|f| f.json_name.clone()));
    let pii: Vec<&str> = event
        .fields
        .iter()
        .filter(|f| f.attrs.pii.is_some())
        .map(|f| f.json_name.as_str())
        .collect();
    let deprecated = match &event.attrs.deprecated {
        None => quote!(#p::None),
        Some(d) => match &d.reason {
            Some(reason) => quote!(#p::Some(#p::Some(#reason))),
            None => quote!(#p::Some(#p::None)),
        },
    };
    let previous = match &event.attrs.previous {
        Some(path) => quote!(#p::Some(<#path as #krate::DomainEvent>::descriptor)),
        None => quote!(#p::None),
    };
    let partition_key_body = partition_key_body(&p, partition_field);
    // Spanned on the type name, so the location is the struct's line, not the derive's.
    let location = quote_spanned! {ident.span()=>
        file: #p::file!(),
        line: #p::line!(),
    };
    let previous_checks = event
        .attrs
        .previous
        .as_ref()
        .map(|path| previous_checks(&krate, ident, path));

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, clippy::absolute_paths)]
        const _: () = {
            #[automatically_derived]
            impl #krate::DomainEvent for #ident {
                const NAME: &'static #p::str = #name;
                const VERSION: #p::u32 = #version;

                fn descriptor() -> &'static #krate::EventDescriptor {
                    static __DESCRIPTOR: #krate::EventDescriptor =
                        #krate::EventDescriptor::__from_parts(#p::DescriptorParts {
                            name: #name,
                            version: #version,
                            rust_type: #p::concat!(#p::module_path!(), "::", #type_name),
                            module_path: #p::module_path!(),
                            #location
                            description: #description,
                            source: #source,
                            aggregate: #aggregate,
                            partition_key: #partition_key_name,
                            pii: &[#(#pii),*],
                            deprecated: #deprecated,
                            previous: #previous,
                            schema: #p::schema_for::<#ident>,
                        });
                    &__DESCRIPTOR
                }

                fn partition_key(&self) -> #p::Option<#p::String> {
                    #partition_key_body
                }
            }

            #p::inventory::submit! {
                #p::Registration::new(<#ident as #krate::DomainEvent>::descriptor)
            }

            #previous_checks
        };
    }
}

/// The partition key as a string: `Display` of the field, or of what an `Option` holds.
/// Spanned on the field's type, so a type without `Display` is reported there.
fn partition_key_body(p: &TokenStream, field: Option<&Field>) -> TokenStream {
    let Some(field) = field else {
        return quote!(#p::None);
    };
    let member = field.member;
    let ty = field.ty;
    if is_option(ty) {
        quote_spanned! {ty.span()=>
            #p::Option::map(#p::Option::as_ref(&self.#member), #p::ToString::to_string)
        }
    } else {
        quote_spanned! {ty.span()=>
            #p::Some(#p::ToString::to_string(&self.#member))
        }
    }
}

/// Whether a type is written as `Option<...>` (by any path ending in `Option`).
fn is_option(ty: &Type) -> bool {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Option" && !s.arguments.is_empty()),
        Type::Group(group) => is_option(&group.elem),
        Type::Paren(paren) => is_option(&paren.elem),
        _ => false,
    }
}

/// `previous = Prev` holds only if `Prev` is the same event one version below, and the new
/// type can be made from it. Both are checked by the compiler, on the `previous` path.
fn previous_checks(krate: &syn::Path, ident: &syn::Ident, previous: &syn::Path) -> TokenStream {
    let p = quote!(#krate::__private);
    quote_spanned! {previous.span()=>
        const _: () = #p::assert_previous_version(
            <#previous as #krate::DomainEvent>::NAME,
            <#previous as #krate::DomainEvent>::VERSION,
            <#ident as #krate::DomainEvent>::NAME,
            <#ident as #krate::DomainEvent>::VERSION,
        );
        const _: fn(#previous) -> #ident = <#ident as #p::Upcast<#previous>>::upcast;
    }
}
