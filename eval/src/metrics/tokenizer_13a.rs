//! sacreBLEU's `13a` tokenizer (mteval-v13a, the WMT standard), rule for rule.

use super::is_python_whitespace;

/// The tokens of `line`.
pub fn tokenize(line: &str) -> Vec<String> {
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let chars: Vec<char> = format!(" {line} ").chars().collect();
    // r'([\{-\~\[-\` -\&\(-\+\:-\@\/])' -> r' \1 '
    let mut spaced = Vec::with_capacity(chars.len() * 2);
    for c in chars {
        if is_symbol(c) {
            spaced.extend([' ', c, ' ']);
        } else {
            spaced.push(c);
        }
    }
    // r'([^0-9])([\.,])' -> r'\1 \2 '
    let spaced = substitute_pairs(
        &spaced,
        |a, b| !a.is_ascii_digit() && is_period_comma(b),
        |a, b| vec![a, ' ', b, ' '],
    );
    // r'([\.,])([^0-9])' -> r' \1 \2'
    let spaced = substitute_pairs(
        &spaced,
        |a, b| is_period_comma(a) && !b.is_ascii_digit(),
        |a, b| vec![' ', a, ' ', b],
    );
    // r'([0-9])(-)' -> r'\1 \2 '
    let spaced = substitute_pairs(
        &spaced,
        |a, b| a.is_ascii_digit() && b == '-',
        |a, b| vec![a, ' ', b, ' '],
    );
    let text: String = spaced.into_iter().collect();
    text.split(is_python_whitespace)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_symbol(c: char) -> bool {
    matches!(c, '{'..='~' | '['..='`' | ' '..='&' | '('..='+' | ':'..='@' | '/')
}

fn is_period_comma(c: char) -> bool {
    c == '.' || c == ','
}

/// A regex substitution of a two-character pattern, leftmost first, matches not overlapping (as
/// Python's `re.sub`).
fn substitute_pairs(
    chars: &[char],
    matches: impl Fn(char, char) -> bool,
    replace: impl Fn(char, char) -> Vec<char>,
) -> Vec<char> {
    let mut out = Vec::with_capacity(chars.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        if i + 1 < chars.len() && matches(chars[i], chars[i + 1]) {
            out.extend(replace(chars[i], chars[i + 1]));
            i += 2;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}
