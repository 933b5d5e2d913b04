//! Text made safe for MDX, as EventCatalog reads it.
//!
//! In MDX, `<` opens JSX and `{` an expression, a line starting with `import ` or `export `
//! is an ES module statement, and EventCatalog's remark-directive reads `:name` as a
//! directive: any of them in a doc comment would break the build or swallow text. Outside
//! code spans and fenced code blocks (where MDX reads nothing), `<`, `>`, `{` and `}` become
//! character references (`&lt;`, `&gt;`, `&#123;`, `&#125;`: a backslash would end up inside
//! a bare URL, as GFM links `https://...` up to the next space) and a directive's `:` is
//! escaped (`\:`) except in a URL; Markdown renders them as the characters themselves. The
//! rest of the Markdown (emphasis, links, lists, code) is kept.

/// The character reference of a character MDX reads as JSX or an expression.
fn reference(c: char) -> Option<&'static str> {
    match c {
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '{' => Some("&#123;"),
        '}' => Some("&#125;"),
        _ => None,
    }
}

/// A description or any block of Markdown: prose escaped, fenced code blocks and code spans
/// kept as written, `>` kept where it marks a block quote.
pub(super) fn text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut prose = String::new();
    let mut fence: Option<(char, usize)> = None;
    for line in markdown.split_inclusive('\n') {
        match fence {
            Some((marker, length)) => {
                out.push_str(line);
                if closes_fence(line, marker, length) {
                    fence = None;
                }
            }
            None => {
                if let Some(opened) = opens_fence(line) {
                    out.push_str(&escape_prose(&prose, false));
                    prose.clear();
                    out.push_str(line);
                    fence = Some(opened);
                } else {
                    prose.push_str(line);
                }
            }
        }
    }
    out.push_str(&escape_prose(&prose, false));
    out
}

/// One table cell: paragraphs joined by `<br />`, lines by spaces, prose escaped as by
/// [`text`], and `|` escaped everywhere (GFM splits cells at a `|` even in a code span).
pub(super) fn cell(markdown: &str) -> String {
    let normalized = markdown.replace("\r\n", "\n");
    let paragraphs: Vec<String> = normalized
        .split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .map(|p| escape_prose(&p, true))
        .collect();
    paragraphs.join("<br /><br />")
}

/// `text` as an inline code span, whatever backticks it holds: the fence is one backtick
/// longer than the longest run inside, padded with spaces where the text starts or ends with
/// a backtick. Line breaks become spaces (a code span is one line in a table).
pub(super) fn code(text: &str) -> String {
    let text = text.replace(['\r', '\n'], " ");
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

/// The opening of a fenced code block: up to three spaces, then three or more backticks
/// (with no backtick in the info string) or tildes.
fn opens_fence(line: &str) -> Option<(char, usize)> {
    let trimmed = strip_indent(line)?;
    let marker = trimmed.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let length = trimmed.chars().take_while(|&c| c == marker).count();
    if length < 3 {
        return None;
    }
    let info = &trimmed[length..];
    if marker == '`' && info.contains('`') {
        return None;
    }
    Some((marker, length))
}

/// Whether `line` closes a fence of `marker` at least `length` long.
fn closes_fence(line: &str, marker: char, length: usize) -> bool {
    let Some(trimmed) = strip_indent(line) else {
        return false;
    };
    let run = trimmed.chars().take_while(|&c| c == marker).count();
    run >= length && trimmed[run..].trim().is_empty()
}

/// The line without up to three leading spaces; `None` when indented further.
fn strip_indent(line: &str) -> Option<&str> {
    let spaces = line.len() - line.trim_start_matches(' ').len();
    (spaces <= 3).then(|| &line[spaces..])
}

/// Prose (no fenced code): the special characters escaped outside code spans; with
/// `pipes`, every `|` not escaped yet too, in code spans as well (for a table cell).
fn escape_prose(prose: &str, pipes: bool) -> String {
    let chars: Vec<char> = prose.chars().collect();
    let mut out = String::with_capacity(prose.len() + 8);
    // Whether only spaces and `>` were seen since the line started: a `>` there marks a
    // block quote and is kept.
    let mut line_prefix = true;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            let run = run_length(&chars, i, '`');
            if let Some(end) = closing_backticks(&chars, i + run, run) {
                for &c in &chars[i..end + run] {
                    if pipes && c == '|' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                i = end + run;
            } else {
                out.extend(&chars[i..i + run]);
                i += run;
            }
            line_prefix = false;
            continue;
        }
        let at_line_start = line_prefix;
        if line_prefix && c != ' ' && c != '>' {
            line_prefix = false;
            if starts_esm(&chars[i..]) {
                // `\i` would not be an escape: a character reference keeps the letter.
                out.push_str(if c == 'i' { "&#105;" } else { "&#101;" });
                i += 1;
                continue;
            }
        }
        if c == '\\' && chars.get(i + 1).is_some_and(char::is_ascii_punctuation) {
            // A Markdown escape already: kept as written, the character it escapes included.
            out.extend(&chars[i..i + 2]);
            i += 2;
            continue;
        }
        match c {
            '\n' => {
                line_prefix = true;
                out.push(c);
            }
            '>' if line_prefix => out.push(c),
            '|' if pipes => out.push_str("\\|"),
            // `:name` is a text directive, `::name` and `:::` at a line's start open or close
            // directive blocks; a bare URL is a link before any directive is looked for.
            ':' if at_line_start
                || (chars.get(i + 1).is_some_and(char::is_ascii_alphabetic)
                    && !in_url(&chars, i)) =>
            {
                out.push_str("\\:");
            }
            c => match reference(c) {
                Some(escaped) => out.push_str(escaped),
                None => out.push(c),
            },
        }
        i += 1;
    }
    out
}

/// Whether the `:` at `i` is part of a URL: its word (since the last whitespace) holds `://`
/// up to or at it.
fn in_url(chars: &[char], i: usize) -> bool {
    let start = chars[..i]
        .iter()
        .rposition(|c| c.is_whitespace())
        .map_or(0, |p| p + 1);
    let word: String = chars[start..chars.len().min(i + 3)].iter().collect();
    word.contains("://")
}

/// Whether the text starts with the `import` or `export` keyword followed by a space or the
/// end of the line, as an MDX module statement does.
fn starts_esm(chars: &[char]) -> bool {
    ["import", "export"].iter().any(|keyword| {
        let length = keyword.len();
        chars.len() >= length
            && chars[..length].iter().copied().eq(keyword.chars())
            && chars
                .get(length)
                .is_none_or(|c| c.is_whitespace() || *c == '{' || *c == '*')
    })
}

fn run_length(chars: &[char], start: usize, c: char) -> usize {
    chars[start..].iter().take_while(|&&x| x == c).count()
}

/// Where a run of exactly `length` backticks starts at or after `from`, before the paragraph
/// ends (a blank line): the end of a code span.
fn closing_backticks(chars: &[char], from: usize, length: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '`' => {
                let run = run_length(chars, i, '`');
                if run == length {
                    return Some(i);
                }
                i += run;
            }
            '\n' => {
                let rest = &chars[i + 1..];
                let blank = rest
                    .iter()
                    .take_while(|&&c| c != '\n')
                    .all(|c| c.is_whitespace());
                if blank {
                    return None;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsx_expressions_and_directives_are_escaped_in_prose() {
        assert_eq!(
            text("A list<string> of {ids} as a:b, at 12:30, see https://u:p@x.y/{id}"),
            "A list&lt;string&gt; of &#123;ids&#125; as a\\:b, at 12:30, see https://u:p@x.y/&#123;id&#125;"
        );
    }

    #[test]
    fn code_spans_and_fences_are_kept() {
        assert_eq!(
            text("Use `Vec<T>` or ``a ` {b}``."),
            "Use `Vec<T>` or ``a ` {b}``."
        );
        let fenced = "Before <a>\n\n```rust\nlet x: Vec<u8> = {};\n```\nAfter {b}\n";
        assert_eq!(
            text(fenced),
            "Before &lt;a&gt;\n\n```rust\nlet x: Vec<u8> = {};\n```\nAfter &#123;b&#125;\n"
        );
        // an unclosed fence runs to the end, as in CommonMark
        assert_eq!(text("~~~\n<x>\n"), "~~~\n<x>\n");
        // an unmatched backtick is literal, and what follows is prose
        assert_eq!(text("a ` <b>"), "a ` &lt;b&gt;");
        // a code span does not cross a blank line
        assert_eq!(text("a `b\n\nc <d>` e"), "a `b\n\nc &lt;d&gt;` e");
    }

    #[test]
    fn markdown_escapes_are_kept_whole() {
        assert_eq!(text(r"a \{ b \\{ c \* d \x"), r"a \{ b \\&#123; c \* d \x");
    }

    #[test]
    fn directive_fences_are_escaped() {
        assert_eq!(text(":::\nx\n  :: y"), "\\:::\nx\n  \\:: y");
    }

    #[test]
    fn block_quotes_stay_and_module_statements_do_not_start_a_line() {
        assert_eq!(
            text("> quoted <x>\n> > nested"),
            "> quoted &lt;x&gt;\n> > nested"
        );
        assert_eq!(
            text("import the data\nexport {x}\nimports and exporters"),
            "&#105;mport the data\n&#101;xport &#123;x&#125;\nimports and exporters"
        );
    }

    #[test]
    fn cells_are_one_line_with_pipes_escaped() {
        assert_eq!(
            cell("First <a> | b.\n\nSecond `x|y`\nline."),
            "First &lt;a&gt; \\| b.<br /><br />Second `x\\|y` line."
        );
        assert_eq!(cell(""), "");
        assert_eq!(cell(r"a \| b \\| c"), r"a \| b \\\| c");
    }

    #[test]
    fn code_spans_fit_any_backticks() {
        assert_eq!(code("a.b"), "`a.b`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a\nb"), "`a b`");
    }
}
