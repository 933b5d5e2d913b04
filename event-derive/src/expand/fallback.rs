//! What a failed derive emits: the errors, and a stub impl so that uses of the type compile
//! and the user sees only the errors that matter.

use crate::ast_union::Union;
use proc_macro2::TokenStream;
use quote::quote;
use syn::{DeriveInput, Path};

pub(crate) fn domain_event(input: &DeriveInput, krate: &Path, errors: &syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    // A union or a type with lifetimes cannot carry the impl anyway: the errors say why.
    if matches!(input.data, syn::Data::Union(_)) || !input.generics.params.is_empty() {
        return errors;
    }
    let ident = &input.ident;
    let krate = quote!(#krate);
    quote! {
        #errors
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #krate::DomainEvent for #ident {
                const NAME: &'static #krate::__private::str = "";
                const VERSION: #krate::__private::u32 = 0;
                fn descriptor() -> &'static #krate::EventDescriptor {
                    #krate::__private::unreachable!()
                }
                fn partition_key(&self) -> #krate::__private::Option<#krate::__private::String> {
                    #krate::__private::unreachable!()
                }
            }
        };
    }
}

pub(crate) fn event_union(
    input: &DeriveInput,
    union: Option<&Union>,
    errors: &syn::Error,
) -> TokenStream {
    let errors = errors.to_compile_error();
    // Only an enum without parameters can carry the impl: the errors say why.
    let (Some(union), syn::Data::Enum(_)) = (union, &input.data) else {
        return errors;
    };
    if !input.generics.params.is_empty() {
        return errors;
    }
    let ident = &input.ident;
    let krate = union
        .attrs
        .crate_path
        .clone()
        .unwrap_or_else(super::default_crate_path);
    let krate = quote!(#krate);
    let p = quote!(#krate::__private);
    // `From` for each well-formed variant, each type once, so conversions elsewhere compile.
    let mut seen = Vec::new();
    let from_impls = union.variants.iter().filter_map(|v| {
        let ty = v.ty;
        let key = quote!(#ty).to_string();
        if seen.contains(&key) {
            return None;
        }
        seen.push(key);
        let name = v.ident;
        Some(quote! {
            #[automatically_derived]
            impl #p::From<#ty> for #ident {
                fn from(__event: #ty) -> Self {
                    Self::#name(__event)
                }
            }
        })
    });
    quote! {
        #errors
        #[doc(hidden)]
        const _: () = {
            #[automatically_derived]
            impl #krate::EventUnion for #ident {
                const EVENTS: &'static [(&'static #p::str, #p::u32)] = &[];
                fn decode_payload(
                    _: &#p::str,
                    _: #p::u32,
                    _: &#p::str,
                ) -> #p::Result<Self, #krate::DecodeError> {
                    #p::unreachable!()
                }
                fn event(&self) -> (&'static #p::str, #p::u32) {
                    #p::unreachable!()
                }
                fn partition_key(&self) -> #p::Option<#p::String> {
                    #p::unreachable!()
                }
            }
            #(#from_impls)*
        };
    }
}
