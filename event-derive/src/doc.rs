//! The event's description from its doc comments.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Expr, ExprLit, Lit, Meta};

/// One `#[doc = ...]` value: a literal line, or an expression such as `include_str!(...)`.
enum DocPiece {
    Line(String),
    Expr(Expr),
}

/// The doc comments of `attrs` as one `&'static str` expression, or `None` without any.
///
/// Literal lines lose their common indentation and leading and trailing blank lines; other
/// values (`#[doc = include_str!("event.md")]`) are kept as expressions and joined with
/// `concat!`, so they work as they do in rustdoc.
pub(crate) fn description(attrs: &[Attribute]) -> Option<TokenStream> {
    let pieces: Vec<DocPiece> = attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .filter_map(|attr| match &attr.meta {
            Meta::NameValue(nv) => Some(match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => DocPiece::Line(s.value()),
                other => DocPiece::Expr(other.clone()),
            }),
            _ => None,
        })
        .collect();
    if pieces.is_empty() {
        return None;
    }
    if pieces.iter().all(|p| matches!(p, DocPiece::Line(_))) {
        let lines: Vec<String> = pieces
            .into_iter()
            .map(|p| match p {
                DocPiece::Line(l) => l,
                DocPiece::Expr(_) => unreachable!("all pieces are lines"),
            })
            .collect();
        let text = dedent(&lines);
        return (!text.is_empty()).then(|| quote!(#text));
    }
    let parts = pieces.iter().enumerate().map(|(i, piece)| {
        let sep = if i == 0 { quote!() } else { quote!("\n",) };
        match piece {
            DocPiece::Line(line) => {
                let line = line.strip_prefix(' ').unwrap_or(line);
                quote!(#sep #line,)
            }
            DocPiece::Expr(expr) => quote!(#sep #expr,),
        }
    });
    Some(quote!(::core::concat!(#(#parts)*)))
}

/// Joins doc lines, each split further at newlines (block comments), with the common
/// indentation removed and blank lines trimmed at both ends.
fn dedent(lines: &[String]) -> String {
    let lines: Vec<&str> = lines.iter().flat_map(|l| l.split('\n')).collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let body: Vec<&str> = lines
        .iter()
        .map(|l| {
            if l.trim().is_empty() {
                ""
            } else {
                l[indent..].trim_end()
            }
        })
        .collect();
    body.join("\n").trim_matches('\n').to_owned()
}

#[cfg(test)]
mod tests {
    use super::dedent;

    #[test]
    fn strips_common_indent_and_blank_ends() {
        let lines =
            [" A customer placed an order.", "", "   Indented more.", " "].map(String::from);
        assert_eq!(
            dedent(&lines),
            "A customer placed an order.\n\n  Indented more."
        );
    }

    #[test]
    fn splits_block_comments() {
        let lines = ["\n    First line.\n    Second line.\n    ".to_owned()];
        assert_eq!(dedent(&lines), "First line.\nSecond line.");
    }
}
