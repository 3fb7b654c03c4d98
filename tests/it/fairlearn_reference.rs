//! Checks the group fairness metrics against fairlearn 0.15.0
//! (`data/oracle_reference/reference_fairlearn_vader.json`), computed on the
//! VADER scores of the ICWSM-2014 ground truth: rows with a human mean of 0
//! dropped, label = human mean > 0, prediction = VADER compound ≥ 0.05,
//! group = data set. Every number is recomputed here from the TSV and
//! compared with the value parsed from the JSON.

use std::fs;
use std::path::PathBuf;

use fairtreat::domain::fairness::{GroupMetrics, MetricFrame};
use serde_json::Value;

/// The JSON rounds to 6 decimals, so values agree within half of that; the
/// brief asks for 1e-6.
const TOLERANCE: f64 = 1e-6;

/// The reference's prediction rule: VADER's conventional cut-off for a
/// positive compound score.
const POSITIVE_COMPOUND: f64 = 0.05;

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/oracle_reference")
        .join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn reference() -> Value {
    serde_json::from_str(&read("reference_fairlearn_vader.json")).expect("reference JSON parses")
}

fn number(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("reference has no number at {path}"))
}

/// `(group, label, prediction)` for every row with a non-zero human mean.
fn rows() -> Vec<(String, bool, bool)> {
    let tsv = read("vader_scores_icwsm2014.tsv");
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let (set, human, compound) = (column("set"), column("human_mean"), column("compound"));
    let parse = |field: &str, line: usize| -> f64 {
        field
            .parse()
            .unwrap_or_else(|e| panic!("line {line}: {field:?}: {e}"))
    };
    lines
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .filter_map(|(i, line)| {
            let f: Vec<&str> = line.split('\t').collect();
            let human_mean = parse(f[human], i + 2);
            (human_mean != 0.0).then(|| {
                (
                    f[set].to_owned(),
                    human_mean > 0.0,
                    parse(f[compound], i + 2) >= POSITIVE_COMPOUND,
                )
            })
        })
        .collect()
}

fn assert_close(what: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= TOLERANCE,
        "{what}: ours {ours}, fairlearn {theirs}"
    );
}

#[test]
fn the_rows_kept_are_the_ones_fairlearn_was_given() {
    let n = reference()["n"].as_u64().expect("n");
    assert_eq!(rows().len() as u64, n);
}

#[test]
fn per_group_rates_match_fairlearn_to_1e_6() {
    let reference = reference();
    let by_group = reference["by_group"].as_object().expect("by_group");
    let frame: MetricFrame<String> = rows().into_iter().collect();

    let ours: Vec<&String> = frame.by_group().map(|(g, _)| g).collect();
    let mut theirs: Vec<&String> = by_group.keys().collect();
    theirs.sort();
    assert_eq!(ours, theirs, "the same groups");

    for (group, expected) in by_group {
        let m: GroupMetrics = frame.group(group).expect("group present");
        let defined = |rate: Option<f64>, name: &str| {
            rate.unwrap_or_else(|| panic!("{group} {name} undefined, fairlearn has a value"))
        };
        let checks = [
            ("selection_rate", m.selection_rate),
            ("tpr", defined(m.true_positive_rate, "tpr")),
            ("fpr", defined(m.false_positive_rate, "fpr")),
            ("accuracy", m.accuracy),
        ];
        for (name, ours) in checks {
            let theirs = expected[name]
                .as_f64()
                .unwrap_or_else(|| panic!("no {group}.{name}"));
            assert_close(&format!("{group} {name}"), ours, theirs);
        }
    }
}

#[test]
fn demographic_parity_and_equalized_odds_match_fairlearn_to_1e_6() {
    let reference = reference();
    let frame: MetricFrame<String> = rows().into_iter().collect();
    let checks = [
        (
            "demographic_parity_difference",
            frame.demographic_parity_difference(),
        ),
        ("demographic_parity_ratio", frame.demographic_parity_ratio()),
        (
            "equalized_odds_difference",
            frame.equalized_odds_difference(),
        ),
        ("equalized_odds_ratio", frame.equalized_odds_ratio()),
    ];
    for (name, ours) in checks {
        assert_close(name, ours, number(&reference, &format!("/{name}")));
    }
}
