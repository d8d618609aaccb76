//! The filter lexer: parentheses, brackets, JSON strings, and runs of
//! anything else (attribute paths, operators, keywords, numbers), each with
//! its 1-based character position for error messages.
use super::{invalid, Value};
use crate::scim::ScimError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    LParen,
    RParen,
    LBrack,
    RBrack,
    /// An attribute path, operator, keyword or number: a run of anything else.
    Word(String),
    Str(String),
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBrack => "'['".into(),
            Tok::RBrack => "']'".into(),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("the string {}", Value::Str(s.clone())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    /// 1-based character position of the token's first character.
    pub(super) pos: usize,
}

pub(super) fn lex(input: &str) -> Result<Vec<Token>, ScimError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let pos = i + 1;
        let tok = match chars[i] {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBrack,
            ']' => Tok::RBrack,
            '"' => {
                let (s, next) = lex_string(&chars, i)?;
                tokens.push(Token {
                    tok: Tok::Str(s),
                    pos,
                });
                i = next;
                continue;
            }
            _ => {
                let start = i;
                while i < chars.len() && !is_delimiter(chars[i]) {
                    i += 1;
                }
                tokens.push(Token {
                    tok: Tok::Word(chars[start..i].iter().collect()),
                    pos,
                });
                continue;
            }
        };
        tokens.push(Token { tok, pos });
        i += 1;
    }
    Ok(tokens)
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// A JSON string starting at `chars[open]` (the quote); returns it and the index after it.
fn lex_string(chars: &[char], open: usize) -> Result<(String, usize), ScimError> {
    let unterminated = || {
        invalid(format!(
            "Unterminated string starting at position {}: expected a closing '\"'",
            open + 1
        ))
    };
    let mut out = String::new();
    let mut i = open + 1;
    loop {
        let c = *chars.get(i).ok_or_else(unterminated)?;
        i += 1;
        match c {
            '"' => return Ok((out, i)),
            '\\' => {
                let escape_pos = i;
                let e = *chars.get(i).ok_or_else(unterminated)?;
                i += 1;
                out.push(match e {
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    'u' => {
                        let (c, next) = lex_unicode_escape(chars, i, escape_pos)?;
                        i = next;
                        c
                    }
                    other => {
                        return Err(invalid(format!(
                            "Invalid escape '\\{other}' at position {escape_pos}: \
                             strings take JSON escapes (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"
                        )))
                    }
                });
            }
            c => out.push(c),
        }
    }
}

/// The `XXXX` of `\uXXXX` at `chars[i..]`, joining a surrogate pair; returns the char and the
/// index after it. `escape_pos` is the 1-based position of the backslash, for errors.
fn lex_unicode_escape(
    chars: &[char],
    i: usize,
    escape_pos: usize,
) -> Result<(char, usize), ScimError> {
    let bad = || {
        invalid(format!(
            "Invalid \\u escape at position {escape_pos}: expected four hex digits \
             (a surrogate pair for characters beyond U+FFFF)"
        ))
    };
    let hex4 = |at: usize| -> Option<u32> {
        let digits: String = chars.get(at..at + 4)?.iter().collect();
        u32::from_str_radix(&digits, 16)
            .ok()
            .filter(|_| digits.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let high = hex4(i).ok_or_else(bad)?;
    if (0xD800..0xDC00).contains(&high) {
        let low = (chars.get(i + 4) == Some(&'\\') && chars.get(i + 5) == Some(&'u'))
            .then(|| hex4(i + 6))
            .flatten()
            .filter(|low| (0xDC00..0xE000).contains(low))
            .ok_or_else(bad)?;
        let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
        return Ok((c.ok_or_else(bad)?, i + 10));
    }
    Ok((char::from_u32(high).ok_or_else(bad)?, i + 4))
}
