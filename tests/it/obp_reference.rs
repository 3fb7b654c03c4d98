//! Checks the off-policy estimators against Open Bandit Pipeline 0.5.7
//! (`data/oracle_reference/reference_obp.json`) on the Open Bandit Dataset
//! sample bundled with obp (campaign `all`, uniform-random and Bernoulli
//! Thompson-sampling logs). Every number is recomputed here from the logs and
//! compared with the value parsed from the JSON.
//!
//! obp also sorts the log by timestamp; the estimates are means over rounds,
//! so the order only moves the last bits, far below the 1e-9 tolerance.

use std::fs::{self, File};
use std::io::Read;
use std::path::PathBuf;

use fairtreat::sim::ope::{
    bootstrap_confidence_interval, Estimator, LoggedData, LoggedRound, PositionTable,
};
use flate2::read::GzDecoder;
use serde_json::Value;

const TOLERANCE: f64 = 1e-9;

fn data_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(relative)
}

fn reference() -> Value {
    let path = data_path("oracle_reference/reference_obp.json");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).expect("reference JSON parses")
}

fn number(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("reference has no number at {path}"))
}

/// One behaviour policy's log, as obp's `OpenBanditDataset` reads it.
struct Log {
    rounds: Vec<LoggedRound>,
    n_actions: usize,
    len_list: usize,
}

impl Log {
    fn data(&self) -> LoggedData<'_> {
        LoggedData::new(&self.rounds, self.n_actions, self.len_list).expect("the log is valid")
    }
}

/// Reads `obd_sample/{policy}/all/all.csv.gz`. Columns are found by name
/// (the first, unnamed one is pandas' row index). obp turns positions into
/// dense 0-based ranks; with positions 1..=3 all present that is `position − 1`,
/// and obp's `n_actions` and `len_list` are the largest index + 1.
fn load_log(policy: &str) -> Log {
    let path = data_path(&format!("obd_sample/{policy}/all/all.csv.gz"));
    let mut text = String::new();
    GzDecoder::new(File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} column"))
    };
    let (item, position, click, pscore) = (
        column("item_id"),
        column("position"),
        column("click"),
        column("propensity_score"),
    );
    let rounds: Vec<LoggedRound> = lines
        .enumerate()
        .map(|(i, line)| {
            // The leading columns are plain numbers and a timestamp: no quoting.
            let f: Vec<&str> = line.split(',').collect();
            let field = |c: usize| {
                f[c].parse::<f64>()
                    .unwrap_or_else(|e| panic!("row {i}: {e}"))
            };
            let index = |c: usize| {
                f[c].parse::<usize>()
                    .unwrap_or_else(|e| panic!("row {i}: {e}"))
            };
            let logged_position = index(position);
            assert!(
                (1..=3).contains(&logged_position),
                "row {i}: position {logged_position}"
            );
            LoggedRound {
                action: index(item),
                position: logged_position - 1,
                reward: field(click),
                pscore: field(pscore),
            }
        })
        .collect();
    for k in 0..3 {
        assert!(
            rounds.iter().any(|r| r.position == k),
            "position {} never logged: dense ranks would shift",
            k + 1
        );
    }
    let n_actions = rounds.iter().map(|r| r.action).max().expect("rounds") + 1;
    let len_list = rounds.iter().map(|r| r.position).max().expect("rounds") + 1;
    Log {
        rounds,
        n_actions,
        len_list,
    }
}

/// Reads an `item_id,pos0,pos1,pos2` table (one row per item, in item order).
fn load_table(name: &str) -> PositionTable {
    let path = data_path(&format!("oracle_reference/{name}"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("item_id,pos0,pos1,pos2"),
        "{name} header"
    );
    let mut values = Vec::new();
    let mut n_actions = 0;
    for (i, line) in lines.filter(|l| !l.trim().is_empty()).enumerate() {
        let mut f = line.split(',');
        let item: usize = f.next().and_then(|s| s.parse().ok()).expect("item_id");
        assert_eq!(item, i, "{name}: items in order from 0");
        let row: Vec<f64> = f
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|e| panic!("{name} item {item}: {e}"))
            })
            .collect();
        assert_eq!(row.len(), 3, "{name} item {item}");
        values.extend(row);
        n_actions += 1;
    }
    PositionTable::new(n_actions, 3, values).expect("a finite 3-position table")
}

fn bts_policy() -> PositionTable {
    load_table("obd_bts_zozotown_prior_action_dist.csv")
}

fn q_hat() -> PositionTable {
    load_table("obd_qhat_ctr_item_position_from_random.csv")
}

fn assert_close(what: &str, ours: f64, theirs: f64) {
    assert!(
        (ours - theirs).abs() <= TOLERANCE,
        "{what}: ours {ours:e}, obp {theirs:e}, off by {:e}",
        (ours - theirs).abs()
    );
}

/// Compares every estimator the reference block has with ours.
fn check_block(block: &str, log: &Log, policy: &PositionTable, model: &PositionTable) {
    let reference = reference();
    let expected = reference[block]
        .as_object()
        .unwrap_or_else(|| panic!("no {block}"));
    assert!(!expected.is_empty());
    let data = log.data();
    for (name, theirs) in expected {
        let estimator = Estimator::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .unwrap_or_else(|| panic!("{block}.{name}: no such estimator here"));
        let ours = estimator
            .estimate(&data, policy, model)
            .unwrap_or_else(|e| panic!("{block}.{name}: {e}"));
        assert_close(
            &format!("{block}.{name}"),
            ours,
            theirs.as_f64().expect("number"),
        );
    }
}

#[test]
fn log_statistics_match_what_obp_read() {
    let reference = reference();
    for policy in ["random", "bts"] {
        let log = load_log(policy);
        let stats = format!("/{policy}_stats");
        let count = |key: &str| number(&reference, &format!("{stats}/{key}"));
        assert_eq!(log.rounds.len() as f64, count("n_rounds"), "{policy}");
        assert_eq!(log.n_actions as f64, count("n_actions"), "{policy}");
        assert_eq!(log.len_list as f64, count("len_list"), "{policy}");
        let clicks: f64 = log.rounds.iter().map(|r| r.reward).sum();
        assert_eq!(clicks, count("clicks"), "{policy} clicks");

        let pscores = log.rounds.iter().map(|r| r.pscore);
        let min = pscores.clone().fold(f64::INFINITY, f64::min);
        let max = pscores.clone().fold(f64::NEG_INFINITY, f64::max);
        let mean = pscores.sum::<f64>() / log.rounds.len() as f64;
        assert_eq!(min, count("pscore_min"), "{policy} pscore min");
        assert_eq!(max, count("pscore_max"), "{policy} pscore max");
        assert_close(&format!("{policy} pscore mean"), mean, count("pscore_mean"));
    }
}

#[test]
fn on_policy_values_match_obp() {
    let reference = reference();
    for policy in ["random", "bts"] {
        let ours = load_log(policy).data().on_policy_value();
        let theirs = number(&reference, &format!("/on_policy_value/{policy}"));
        assert_close(&format!("on_policy_value.{policy}"), ours, theirs);
    }
}

#[test]
fn the_thompson_sampling_policy_evaluated_on_uniform_logs_matches_obp_to_1e_9() {
    check_block(
        "bts_eval_on_random_logs",
        &load_log("random"),
        &bts_policy(),
        &q_hat(),
    );
}

#[test]
fn the_uniform_policy_evaluated_on_thompson_sampling_logs_matches_obp_to_1e_9() {
    let log = load_log("bts");
    let uniform = PositionTable::uniform(log.n_actions, log.len_list);
    check_block("uniform_eval_on_bts_logs", &log, &uniform, &q_hat());
    check_block(
        "uniform_eval_on_bts_logs_qhat_from_random",
        &log,
        &uniform,
        &q_hat(),
    );
}

/// obp's intervals come from numpy's generator, so only their shape can be
/// compared: ours must bracket our point estimate, and obp's bootstrap mean
/// (a draw from the same sampling distribution) should land inside ours.
#[test]
fn bootstrap_intervals_bracket_the_estimates_and_agree_with_obp_in_scale() {
    let reference = reference();
    let block = "bts_eval_on_random_logs_ci95_bootstrap1000_seed12345";
    let log = load_log("random");
    let data = log.data();
    let (policy, model) = (bts_policy(), q_hat());
    for estimator in Estimator::ALL {
        let name = estimator.name();
        let rounds = estimator
            .round_rewards(&data, &policy, &model)
            .expect("estimable");
        let ci = bootstrap_confidence_interval(&rounds, 0.05, 1000, 12345).expect("valid input");
        let point = estimator
            .estimate(&data, &policy, &model)
            .expect("estimable");
        assert_eq!(ci.estimate, point, "{name}");
        assert!(
            ci.lower <= point && point <= ci.upper,
            "{name}: {point} outside {ci:?}"
        );
        let obp_mean = number(&reference, &format!("/{block}/{name}/mean"));
        let obp_lower = number(&reference, &format!("/{block}/{name}/95.0% CI (lower)"));
        let obp_upper = number(&reference, &format!("/{block}/{name}/95.0% CI (upper)"));
        assert!(
            ci.lower <= obp_mean && obp_mean <= ci.upper,
            "{name}: obp's bootstrap mean {obp_mean} outside {ci:?}"
        );
        let (ours, theirs) = (ci.upper - ci.lower, obp_upper - obp_lower);
        assert!(
            ours > 0.7 * theirs && ours < 1.3 * theirs,
            "{name}: width {ours} against obp's {theirs}"
        );
    }
}
