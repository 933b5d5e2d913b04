//! The `DomainEvent` impl, its descriptor and its registration.

use super::{default_crate_path, respan};
use crate::ast::{Event, Field};
use crate::doc;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
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

    let description = event
        .attrs
        .description
        .as_ref()
        .map(ToTokens::to_token_stream)
        .or_else(|| doc::description(&event.original.attrs));
    let description = option(&p, description.as_ref());
    let source = option(&p, event.attrs.source.as_ref());
    let aggregate = option(&p, event.attrs.aggregate.as_ref());
    let partition_field = event
        .fields
        .iter()
        .find(|f| f.attrs.partition_key.is_some());
    let partition_key_name = option(&p, partition_field.map(|f| &f.json_name));
    let Privacy {
        pii,
        subject,
        erased,
    } = privacy(&p, event);
    let deprecated = event
        .attrs
        .deprecated
        .as_ref()
        .map(|d| option(&p, d.reason.as_ref()));
    let deprecated = option(&p, deprecated.as_ref());
    let previous = event
        .attrs
        .previous
        .as_ref()
        .map(|path| quote!(<#path as #krate::DomainEvent>::descriptor));
    let previous = option(&p, previous.as_ref());
    let partition_key_body = partition_key_body(&p, partition_field);
    // The line of the type name itself: `line!()` would give the line of the derive.
    let line = ident.span().unwrap().line();
    let line = u32::try_from(line).unwrap_or(u32::MAX);
    let previous_checks = event
        .attrs
        .previous
        .as_ref()
        .map(|path| previous_checks(&krate, ident, path));
    let decode_older = event
        .attrs
        .previous
        .as_ref()
        .map(|path| decode_older(&krate, path));

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
                            file: #p::file!(),
                            line: #line,
                            description: #description,
                            source: #source,
                            aggregate: #aggregate,
                            partition_key: #partition_key_name,
                            pii: &[#(#pii),*],
                            subject: #subject,
                            erased: #erased,
                            deprecated: #deprecated,
                            previous: #previous,
                            schema: &#p::SchemaFns {
                                name: <#ident as #p::schemars::JsonSchema>::schema_name,
                                id: <#ident as #p::schemars::JsonSchema>::schema_id,
                                json_schema: <#ident as #p::schemars::JsonSchema>::json_schema,
                            },
                        });
                    &__DESCRIPTOR
                }

                fn partition_key(&self) -> #p::Option<#p::String> {
                    #partition_key_body
                }

                #decode_older
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
            #p::Option::map(#p::Option::as_ref(&self.#member), #p::PartitionKey::partition_key)
        }
    } else {
        quote_spanned! {ty.span()=>
            #p::Some(#p::PartitionKey::partition_key(&self.#member))
        }
    }
}

/// The descriptor's personal-data parts.
struct Privacy<'a> {
    /// The JSON names of the PII fields.
    pii: Vec<&'a str>,
    /// `Some(json name)` of the subject field, or `None`, as tokens.
    subject: TokenStream,
    /// The function giving each PII field's erased value.
    erased: TokenStream,
}

fn privacy<'a>(p: &TokenStream, event: &'a Event) -> Privacy<'a> {
    let pii_fields: Vec<&Field> = event
        .fields
        .iter()
        .filter(|f| f.attrs.pii.is_some())
        .collect();
    let subject = event
        .fields
        .iter()
        .find(|f| f.attrs.subject.is_some())
        .map(|f| &f.json_name);
    Privacy {
        pii: pii_fields.iter().map(|f| f.json_name.as_str()).collect(),
        subject: option(p, subject),
        erased: erased_fn(p, &pii_fields),
    }
}

/// What each PII field reads as once its subject is forgotten: its type's `Default`, as
/// JSON. Spanned on each field's type, so a type without `Default` is reported there.
fn erased_fn(p: &TokenStream, fields: &[&Field]) -> TokenStream {
    let arms = fields.iter().map(|field| {
        let name = &field.json_name;
        let ty = field.ty;
        quote_spanned! {ty.span()=>
            #name => #p::Some(#p::erased::<#ty>()),
        }
    });
    quote! {
        {
            fn __erased(__field: &#p::str) -> #p::Option<#p::serde_json::Value> {
                match __field {
                    #(#arms)*
                    _ => #p::None,
                }
            }
            __erased
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
    // Every token on the `previous` path, so that a failed const assertion points there.
    let span = previous.span();
    let krate = respan(quote!(#krate), span);
    let p = quote!(#krate::__private);
    quote_spanned! {span=>
        const _: () = #p::assert_previous_version(
            <#previous as #krate::DomainEvent>::NAME,
            <#previous as #krate::DomainEvent>::VERSION,
            <#ident as #krate::DomainEvent>::NAME,
            <#ident as #krate::DomainEvent>::VERSION,
        );
        const __UPCAST: fn(#previous) -> #ident = <#ident as #p::Upcast<#previous>>::upcast;
    }
}

/// Decoding an older version: this one's payload as is, an older one through the previous
/// version's own decoding, then upcast; the same for an older version's value, typed.
fn decode_older(krate: &syn::Path, previous: &syn::Path) -> TokenStream {
    let p = quote!(#krate::__private);
    quote! {
        fn __decode_at(
            __version: #p::u32,
            __payload: &#p::str,
        ) -> #p::Option<#p::Result<Self, #p::serde_json::Error>> {
            if __version == <Self as #krate::DomainEvent>::VERSION {
                return #p::Some(#p::serde_json::from_str(__payload));
            }
            match <#previous as #krate::DomainEvent>::__decode_at(__version, __payload) {
                // The upcast checked once, on the `previous` path (`__UPCAST`).
                #p::Some(#p::Ok(__previous)) => #p::Some(#p::Ok(__UPCAST(__previous))),
                #p::Some(#p::Err(__error)) => #p::Some(#p::Err(__error)),
                #p::None => #p::None,
            }
        }

        fn __from_any(__event: &dyn #p::Any) -> #p::Option<Self> {
            if let #p::Some(__this) = <dyn #p::Any>::downcast_ref::<Self>(__event) {
                return #p::Some(#p::Clone::clone(__this));
            }
            #p::Option::map(<#previous as #krate::DomainEvent>::__from_any(__event), __UPCAST)
        }
    }
}

/// `Some(value)` or `None`, as tokens.
fn option<T: ToTokens>(p: &TokenStream, value: Option<&T>) -> TokenStream {
    value.map_or_else(|| quote!(#p::None), |value| quote!(#p::Some(#value)))
}
