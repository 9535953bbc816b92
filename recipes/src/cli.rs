//! A small command-line reader shared by the recipes: positional arguments and `--flag value`
//! options, with the error messages a user needs to fix a typo.

use std::collections::VecDeque;

/// One command-line item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `--name` (its value, if it takes one, is read with [`Args::value`]).
    Flag(String),
    Positional(String),
}

/// The arguments still to read.
#[derive(Debug)]
pub struct Args {
    rest: VecDeque<String>,
}

impl Args {
    pub fn new<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            rest: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The process's arguments, without the program name.
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1))
    }

    pub fn next_arg(&mut self) -> Option<Arg> {
        let arg = self.rest.pop_front()?;
        Some(if arg.starts_with("--") || arg == "-h" {
            Arg::Flag(arg)
        } else {
            Arg::Positional(arg)
        })
    }

    /// The value that follows `flag`.
    pub fn value(&mut self, flag: &str) -> Result<String, String> {
        self.rest
            .pop_front()
            .ok_or_else(|| format!("{flag} needs a value"))
    }

    /// The value that follows `flag`, parsed.
    pub fn parsed<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, String> {
        let value = self.value(flag)?;
        value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a valid value"))
    }
}

/// A `--languages` value: comma-separated target codes, each made of letters and '-' only (they
/// become element, pad and directory names), none twice.
pub fn language_codes(value: &str) -> Result<Vec<String>, String> {
    let languages: Vec<String> = value
        .split(',')
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(bad) = languages
        .iter()
        .find(|l| !l.chars().all(|c| c.is_ascii_alphabetic() || c == '-'))
    {
        return Err(format!("--languages: {bad:?} is not a language code"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = languages.iter().find(|l| !seen.insert(l.as_str())) {
        return Err(format!("--languages names {twice} twice"));
    }
    Ok(languages)
}

/// `Err("")` for `-h`/`--help`, so `main` prints only the usage; anything else is unknown.
pub fn unknown(flag: &str) -> String {
    if flag == "-h" || flag == "--help" {
        String::new()
    } else {
        format!("unknown option {flag}")
    }
}

/// Prints `program: error` (when there is one) and the usage, for a bad command line.
pub fn usage_error(program: &str, usage: &str, error: &str) -> std::process::ExitCode {
    if !error.is_empty() {
        eprintln!("{program}: {error}");
    }
    eprintln!("usage: {usage}");
    std::process::ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_values_and_positionals_come_in_order() {
        let mut args = Args::new(["in.mp4", "--language", "fr", "--fps", "25", "out"]);
        assert_eq!(args.next_arg(), Some(Arg::Positional("in.mp4".into())));
        assert_eq!(args.next_arg(), Some(Arg::Flag("--language".into())));
        assert_eq!(args.value("--language").unwrap(), "fr");
        assert_eq!(args.next_arg(), Some(Arg::Flag("--fps".into())));
        assert_eq!(args.parsed::<u32>("--fps").unwrap(), 25);
        assert_eq!(args.next_arg(), Some(Arg::Positional("out".into())));
        assert_eq!(args.next_arg(), None);
    }

    #[test]
    fn missing_and_bad_values_name_the_flag() {
        let mut args = Args::new(["x"]);
        assert_eq!(
            args.parsed::<u32>("--fps").unwrap_err(),
            "--fps x: not a valid value"
        );
        assert_eq!(args.value("--url").unwrap_err(), "--url needs a value");
        assert_eq!(unknown("--nope"), "unknown option --nope");
        assert_eq!(unknown("--help"), "");
    }
}
