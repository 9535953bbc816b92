//! chrF, BLEU and the 13a tokenizer against values computed by sacreBLEU 2.6.0 itself
//! (`sentence_chrf`, `sentence_bleu`, `corpus_chrf`, `corpus_bleu`, `Tokenizer13a` with default
//! arguments) on the pairs below; sacreBLEU is not needed to run this.

use rteval::metrics::bleu::{corpus_bleu, sentence_bleu};
use rteval::metrics::chrf::{corpus_chrf, sentence_chrf};
use rteval::metrics::tokenizer_13a::tokenize;

const PAIRS: [(&str, &str); 6] = [
    (
        "El tiempo hoy es soleado y tibio.",
        "El tiempo hoy es soleado y cálido.",
    ),
    ("Quisiera una taza de café", "Me gustaría una taza de café."),
    (
        "el tren sale a las 7:30, no a las 8.",
        "El tren sale a las siete y media de la mañana.",
    ),
    ("", "Por favor, cierra la puerta cuando salgas."),
    ("Hola", "¿Dónde está el hospital más cercano?"),
    (
        "The price (of bread) has gone up - again! 3-4 times; cost $1,000.50 & more",
        "El precio del pan ha vuelto a subir 3 veces: 1.000,50 $ <más>",
    ),
];

fn close(ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() < 1e-9,
        "ours {ours}, sacreBLEU {theirs}"
    );
}

#[test]
fn sentence_chrf_matches_sacrebleu() {
    let expected = [
        75.41962591689224,
        57.57054903541239,
        37.34501467729368,
        0.0,
        2.9296875,
        15.696602082325423,
    ];
    for ((h, r), e) in PAIRS.iter().zip(expected) {
        close(sentence_chrf(h, r), e);
    }
}

#[test]
fn sentence_bleu_matches_sacrebleu() {
    let expected = [
        70.71067811865478,
        44.82700320176826,
        18.798317647335093,
        0.0,
        0.0,
        2.0540268312306345,
    ];
    for ((h, r), e) in PAIRS.iter().zip(expected) {
        close(sentence_bleu(h, r), e);
    }
}

#[test]
fn corpus_scores_sum_statistics_as_sacrebleu() {
    close(corpus_chrf(&PAIRS), 28.82347646697382);
    close(corpus_bleu(&PAIRS), 18.33227080059158);
    close(corpus_bleu(&PAIRS[..2]), 59.66089938718628);
    close(corpus_chrf(&PAIRS[..3]), 55.12075205256568);
    // Averaging sentence scores would give something else.
    let mean: f64 = PAIRS.iter().map(|(h, r)| sentence_chrf(h, r)).sum::<f64>() / 6.0;
    assert!((mean - 28.82347646697382).abs() > 1.0);
}

#[test]
fn identical_text_scores_100() {
    let text = "Buenas noches y bienvenidos a las noticias.";
    close(sentence_chrf(text, text), 100.0);
    close(corpus_bleu(&[(text, text)]), 100.0);
}

#[test]
fn tokenizer_13a_matches_sacrebleu() {
    let expected = [
        "El tiempo hoy es soleado y tibio .",
        "Quisiera una taza de café",
        "el tren sale a las 7 : 30 , no a las 8 .",
        "",
        "Hola",
        "The price ( of bread ) has gone up - again ! 3 - 4 times ; cost $ 1,000.50 & more",
        "El tiempo hoy es soleado y cálido .",
        "Me gustaría una taza de café .",
        "El tren sale a las siete y media de la mañana .",
        "Por favor , cierra la puerta cuando salgas .",
        "¿Dónde está el hospital más cercano ?",
        "El precio del pan ha vuelto a subir 3 veces : 1.000,50 $ < más >",
    ];
    let inputs = PAIRS.iter().map(|p| p.0).chain(PAIRS.iter().map(|p| p.1));
    for (input, e) in inputs.zip(expected) {
        assert_eq!(tokenize(input).join(" "), e, "{input:?}");
    }
}
