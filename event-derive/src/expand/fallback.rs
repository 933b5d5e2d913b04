//! What a failed derive emits: the errors, and a stub impl so that uses of the type compile
//! and the user sees only the errors that matter.

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
