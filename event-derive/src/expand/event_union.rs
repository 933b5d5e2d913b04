//! The `EventUnion` impl, the `From` impls and the consumer's registration.

use super::{default_crate_path, respan};
use crate::ast_union::{Union, Variant};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;

pub(crate) fn expand(union: &Union) -> TokenStream {
    let krate = union
        .attrs
        .crate_path
        .clone()
        .unwrap_or_else(default_crate_path);
    let krate = quote!(#krate);
    let p = quote!(#krate::__private);
    let ident = union.ident;
    let type_name = ident.unraw().to_string();

    // Every use of a variant's type goes through `<Type as DomainEvent>`, spanned on the type,
    // so a type that is no event is reported there.
    let events = union.variants.iter().map(|v| {
        on_type(v, &krate, |ty, k, span| {
            quote_spanned! {span=>
                (<#ty as #k::DomainEvent>::NAME, <#ty as #k::DomainEvent>::VERSION)
            }
        })
    });
    let decode_arms = union.variants.iter().map(|v| decode_arm(v, &krate));
    let upcasts = upcast_arms(union, &krate);
    let from_event = from_event(union, &krate);
    // `EVENTS` holds each variant's pair at its index: no second use of the type to report.
    let event_arms = union.variants.iter().enumerate().map(|(i, v)| {
        let variant = v.ident;
        quote!(Self::#variant(_) => <Self as #krate::EventUnion>::EVENTS[#i],)
    });
    let partition_key_arms = union.variants.iter().map(|v| {
        let variant = v.ident;
        let call = on_type(
            v,
            &krate,
            |ty, k, span| quote_spanned!(span=> <#ty as #k::DomainEvent>::partition_key(__event)),
        );
        quote!(Self::#variant(__event) => #call,)
    });
    let from_impls = union.variants.iter().map(|v| from_impl(ident, v, &p));
    let consumer = union.attrs.consumer.as_ref().map(|consumer| {
        quote! {
            const CONSUMER: #p::Option<&'static #p::str> = #p::Some(#consumer);
        }
    });
    let registration = union.attrs.consumer.as_ref().map(|consumer| {
        quote! {
            #p::inventory::submit! {
                #p::ConsumerRegistration {
                    consumer: #consumer,
                    rust_type: #p::concat!(#p::module_path!(), "::", #type_name),
                    events: <#ident as #krate::EventUnion>::EVENTS,
                }
            }
        }
    });
    let unique_checks = unique_checks(union, &krate);

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, clippy::absolute_paths)]
        const _: () = {
            #[automatically_derived]
            impl #krate::EventUnion for #ident {
                const EVENTS: &'static [(&'static #p::str, #p::u32)] = &[#(#events),*];
                #consumer

                fn decode_payload(
                    __event_type: &#p::str,
                    __version: #p::u32,
                    __payload: &#p::str,
                ) -> #p::Result<Self, #krate::DecodeError> {
                    #(#decode_arms)*
                    {
                        #upcasts
                        #p::Err(#p::unknown_or_newer(
                            <Self as #krate::EventUnion>::EVENTS,
                            __event_type,
                            __version,
                        ))
                    }
                }

                #from_event

                fn event(&self) -> (&'static #p::str, #p::u32) {
                    match self {
                        #(#event_arms)*
                    }
                }

                fn partition_key(&self) -> #p::Option<#p::String> {
                    match self {
                        #(#partition_key_arms)*
                    }
                }
            }

            #(#from_impls)*

            #registration

            #unique_checks
        };
    }
}

/// Tokens built by `f` with `quote_spanned!` from the variant's type, the crate path and the
/// type's span, the crate path respanned too: whatever the compiler finds wrong in them is
/// reported on the type.
fn on_type(
    variant: &Variant,
    krate: &TokenStream,
    f: impl FnOnce(&syn::Type, &TokenStream, Span) -> TokenStream,
) -> TokenStream {
    let ty = variant.ty;
    let span = ty.span();
    f(ty, &respan(krate.clone(), span), span)
}

/// `if` the envelope names this variant's event, its payload read once, straight into the
/// variant's type; the arms chain with `else`.
fn decode_arm(variant: &Variant, krate: &TokenStream) -> TokenStream {
    let name = variant.ident;
    let p = quote!(#krate::__private);
    let matches = on_type(variant, krate, |ty, k, span| {
        quote_spanned! {span=>
            __event_type == <#ty as #k::DomainEvent>::NAME
                && __version == <#ty as #k::DomainEvent>::VERSION
        }
    });
    let parse = on_type(variant, krate, |ty, k, span| {
        quote_spanned! {span=>
            #k::__private::serde_json::from_str::<#ty>(__payload)
        }
    });
    quote! {
        if #matches {
            match #parse {
                #p::Ok(__event) => #p::Ok(Self::#name(__event)),
                #p::Err(__error) => #p::Err(#krate::DecodeError::payload(
                    __event_type,
                    __version,
                    __error,
                )),
            }
        } else
    }
}

/// An older version of an event the union names goes to the variant of its newest version,
/// upcast through the `previous` chain; when the chain does not reach that version, decoding
/// goes on to the "unknown event" error.
fn upcast_arms(union: &Union, krate: &TokenStream) -> TokenStream {
    let p = quote!(#krate::__private);
    let arms = union.variants.iter().enumerate().map(|(index, v)| {
        let name = v.ident;
        let decode = on_type(v, krate, |ty, k, span| {
            quote_spanned! {span=>
                <#ty as #k::DomainEvent>::__decode_at(__version, __payload)
            }
        });
        quote! {
            #p::Some(#index) => match #decode {
                #p::Some(#p::Ok(__event)) => return #p::Ok(Self::#name(__event)),
                #p::Some(#p::Err(__error)) => {
                    return #p::Err(#krate::DecodeError::payload(__event_type, __version, __error));
                }
                #p::None => {}
            },
        }
    });
    quote! {
        match #p::upcast_target(<Self as #krate::EventUnion>::EVENTS, __event_type, __version) {
            #(#arms)*
            _ => {}
        }
    }
}

/// A value published in this process to the variant that `decode_payload` would pick for
/// its (name, version): cloned, and upcast through the typed chain; no JSON.
fn from_event(union: &Union, krate: &TokenStream) -> TokenStream {
    let p = quote!(#krate::__private);
    let exact = union.variants.iter().map(|v| {
        let name = v.ident;
        let ty = v.ty;
        quote! {
            if __event_type == <#ty as #krate::DomainEvent>::NAME
                && __version == <#ty as #krate::DomainEvent>::VERSION
            {
                return #p::Option::map(
                    <#ty as #krate::DomainEvent>::__from_any(__event),
                    |__e| Self::#name(__e),
                );
            }
        }
    });
    let upcast = union.variants.iter().enumerate().map(|(index, v)| {
        let name = v.ident;
        let ty = v.ty;
        quote! {
            #p::Some(#index) => #p::Option::map(
                <#ty as #krate::DomainEvent>::__from_any(__event),
                |__e| Self::#name(__e),
            ),
        }
    });
    quote! {
        fn __from_event(
            __event: &dyn #p::Any,
            __event_type: &#p::str,
            __version: #p::u32,
        ) -> #p::Option<Self> {
            #(#exact)*
            match #p::upcast_target(<Self as #krate::EventUnion>::EVENTS, __event_type, __version) {
                #(#upcast)*
                _ => #p::None,
            }
        }
    }
}

fn from_impl(ident: &syn::Ident, variant: &Variant, p: &TokenStream) -> TokenStream {
    let name = variant.ident;
    let ty = variant.ty;
    quote! {
        #[automatically_derived]
        impl #p::From<#ty> for #ident {
            fn from(__event: #ty) -> Self {
                Self::#name(__event)
            }
        }
    }
}

/// Each variant after the first carries another (name, version) than those before it. The
/// names and versions are constants of the variants' types, so the compiler checks this,
/// and reports a repeat on the repeating variant's type.
fn unique_checks(union: &Union, krate: &TokenStream) -> TokenStream {
    if union.variants.len() < 2 {
        return TokenStream::new();
    }
    let ident = union.ident;
    let same_as: Vec<String> = union
        .variants
        .iter()
        .map(|v| {
            format!(
                "this variant carries the same event, name and version, as variant `{}`: \
                 a union has one variant per event, so remove one of them",
                v.ident
            )
        })
        .collect();
    let checks = union.variants.iter().enumerate().skip(1).map(|(i, v)| {
        let span: Span = v.ty.span();
        let krate = respan(krate.clone(), span);
        quote_spanned! {span=>
            const _: () = #krate::__private::assert_unique_event(
                <#ident as #krate::EventUnion>::EVENTS,
                #i,
                __SAME_EVENT_AS,
            );
        }
    });
    let p = quote!(#krate::__private);
    quote! {
        const __SAME_EVENT_AS: &[&#p::str] = &[#(#same_as),*];
        #(#checks)*
    }
}
