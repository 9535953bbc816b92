//! Numbers and names in a reference that a translation lost: the errors a listener notices most
//! and that chrF barely weighs.

/// Number words that stand for a digit string (0–20, tens, hundred, thousand), per language.
fn number_words(language: &str) -> &'static [(&'static str, &'static str)] {
    const ES: &[(&str, &str)] = &[
        ("cero", "0"),
        ("dos", "2"),
        ("tres", "3"),
        ("cuatro", "4"),
        ("cinco", "5"),
        ("seis", "6"),
        ("siete", "7"),
        ("ocho", "8"),
        ("nueve", "9"),
        ("diez", "10"),
        ("once", "11"),
        ("doce", "12"),
        ("trece", "13"),
        ("catorce", "14"),
        ("quince", "15"),
        ("dieciseis", "16"),
        ("diecisiete", "17"),
        ("dieciocho", "18"),
        ("diecinueve", "19"),
        ("veinte", "20"),
        ("treinta", "30"),
        ("cuarenta", "40"),
        ("cincuenta", "50"),
        ("sesenta", "60"),
        ("setenta", "70"),
        ("ochenta", "80"),
        ("noventa", "90"),
        ("cien", "100"),
        ("mil", "1000"),
    ];
    const EN: &[(&str, &str)] = &[
        ("zero", "0"),
        ("two", "2"),
        ("three", "3"),
        ("four", "4"),
        ("five", "5"),
        ("six", "6"),
        ("seven", "7"),
        ("eight", "8"),
        ("nine", "9"),
        ("ten", "10"),
        ("eleven", "11"),
        ("twelve", "12"),
        ("thirteen", "13"),
        ("fourteen", "14"),
        ("fifteen", "15"),
        ("sixteen", "16"),
        ("seventeen", "17"),
        ("eighteen", "18"),
        ("nineteen", "19"),
        ("twenty", "20"),
        ("thirty", "30"),
        ("forty", "40"),
        ("fifty", "50"),
        ("sixty", "60"),
        ("seventy", "70"),
        ("eighty", "80"),
        ("ninety", "90"),
        ("hundred", "100"),
        ("thousand", "1000"),
    ];
    match language.split(['-', '_']).next().unwrap_or("") {
        "es" => ES,
        "en" => EN,
        _ => &[],
    }
}

/// Lower case without diacritics, so "María" and "Maria" match.
fn fold(word: &str) -> String {
    word.to_lowercase()
        .chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ñ' => 'n',
            'ç' => 'c',
            c => c,
        })
        .collect()
}

/// Words with the position of their first character and whether a sentence starts there.
fn words(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut sentence_start = true;
    let mut word_at_sentence_start = true;
    for c in text.chars() {
        if c.is_alphanumeric()
            || ((c == '.' || c == ',')
                && current.chars().all(|d| d.is_ascii_digit())
                && !current.is_empty())
        {
            if current.is_empty() {
                word_at_sentence_start = sentence_start;
            }
            current.push(c);
        } else {
            if !current.is_empty() {
                let word = current.trim_end_matches(['.', ',']).to_owned();
                out.push((word, word_at_sentence_start));
                sentence_start = current.ends_with('.');
                current.clear();
            }
            if matches!(c, '.' | '!' | '?' | '¿' | '¡' | ':' | '"' | '«') {
                sentence_start = true;
            } else if !c.is_whitespace() {
                sentence_start = false;
            }
        }
    }
    if !current.is_empty() {
        out.push((
            current.trim_end_matches(['.', ',']).to_owned(),
            word_at_sentence_start,
        ));
    }
    out
}

/// The numbers (digits or number words) and names (capitalised words not starting a sentence)
/// of `reference` that `translation` does not contain, in reference order. A number counts as
/// kept in either form ("7" or "siete").
pub fn lost_terms(reference: &str, translation: &str, language: &str) -> Vec<String> {
    let table = number_words(language);
    let said: Vec<String> = words(translation)
        .into_iter()
        .map(|(w, _)| fold(&w))
        .collect();
    let mut lost = Vec::new();
    for (word, at_start) in words(reference) {
        let folded = fold(&word);
        let is_digits = word.chars().next().is_some_and(|c| c.is_ascii_digit());
        let number = table.iter().find(|(w, d)| *w == folded || *d == folded);
        let is_name = !at_start && word.chars().next().is_some_and(char::is_uppercase);
        if !(is_digits || number.is_some() || is_name) {
            continue;
        }
        let kept = said
            .iter()
            .any(|s| *s == folded || number.is_some_and(|(w, d)| s == w || s == d));
        if !kept && !lost.contains(&word) {
            lost.push(word);
        }
    }
    lost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_kept_in_any_form() {
        let reference = "María trabaja en el banco en Madrid. Tengo 3 hermanos y dos hermanas.";
        assert!(
            lost_terms(
                reference,
                "Maria trabaja en el banco en Madrid. Tengo tres hermanos y 2 hermanas.",
                "es"
            )
            .is_empty()
        );
    }

    #[test]
    fn lost_names_and_numbers_are_listed_once_in_order() {
        let reference = "El tren sale a las siete. Y el señor John Dashwood, John, vino en 1811.";
        let lost = lost_terms(reference, "El tren sale a las ocho y el señor vino.", "es");
        assert_eq!(lost, ["siete", "John", "Dashwood", "1811"]);
    }

    #[test]
    fn a_capital_at_a_sentence_start_is_not_a_name() {
        assert!(lost_terms("¿Dónde está? Este libro.", "", "es").is_empty());
    }
}
