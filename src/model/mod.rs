//! Model artefacts on disk: which models are active, their cards, and
//! loading them into a [`Models`] bundle.
//!
//! `models/active.toml` names the active model of each task; each model lives
//! in `models/<version>/` with a `card.json` (what it is, what data it was
//! built from, its metrics) and its artefact. A card whose `kind` or
//! `schema` this build does not know is refused with a clear error: loading
//! a model with the wrong feature layout would make linfa assert and panic a
//! worker.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::outcome::{OutcomeModel, RulesOutcome};
use crate::domain::sentiment::{SentimentModel, VaderScorer};
use crate::service::Models;

pub mod metrics;
pub mod outcome;
pub mod sentiment;
pub mod shadow;

/// The feature schema version this build reads.
pub const SCHEMA: u32 = 1;

/// Checks an artefact's header against what this build reads: the artefact
/// format, the model kind and the feature schema, each as (found, expected).
pub fn check_header(format: (u32, u32), kind: (&str, &str), schema: u32) -> Result<(), String> {
    if format.0 != format.1 {
        return Err(format!(
            "format {} (this build reads {})",
            format.0, format.1
        ));
    }
    if kind.0 != kind.1 {
        return Err(format!("kind {:?} (expected {:?})", kind.0, kind.1));
    }
    if schema != SCHEMA {
        return Err(format!(
            "feature schema {schema} does not match this build's schema {SCHEMA}"
        ));
    }
    Ok(())
}

/// `models/active.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Active {
    pub sentiment: String,
    pub outcome: String,
}

/// The part of a model card this build relies on; cards carry more.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Card {
    pub version: String,
    pub task: String,
    pub kind: String,
    pub schema: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("model {version}: {message}")]
    Unsupported { version: String, message: String },
}

fn read(path: &Path) -> Result<String, ModelError> {
    std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a model's card.
pub fn card(dir: &Path, version: &str) -> Result<Card, ModelError> {
    if version.is_empty()
        || !version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || version.contains("..")
    {
        return Err(ModelError::Unsupported {
            version: version.to_string(),
            message: "model versions are [A-Za-z0-9._-]+".into(),
        });
    }
    let path = dir.join(version).join("card.json");
    let card: Card = serde_json::from_str(&read(&path)?).map_err(|e| ModelError::Invalid {
        path,
        message: e.to_string(),
    })?;
    if card.version != version {
        return Err(ModelError::Unsupported {
            version: version.to_string(),
            message: format!("its card names version {:?}", card.version),
        });
    }
    if card.schema != SCHEMA {
        return Err(ModelError::Unsupported {
            version: version.to_string(),
            message: format!(
                "feature schema {} does not match this build's schema {SCHEMA}",
                card.schema
            ),
        });
    }
    Ok(card)
}

/// Loads a trained model's `model.json` with `parse` (which validates the
/// artefact) and checks it names the card's version.
fn load_artefact<M, E: std::fmt::Display>(
    dir: &Path,
    card: &Card,
    parse: impl Fn(&str) -> Result<M, E>,
    version: impl Fn(&M) -> &str,
) -> Result<M, ModelError> {
    let path = dir.join(&card.version).join("model.json");
    let model = parse(&read(&path)?).map_err(|e| ModelError::Invalid {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if version(&model) != card.version {
        return Err(ModelError::Unsupported {
            version: card.version.clone(),
            message: format!("its model.json names version {:?}", version(&model)),
        });
    }
    Ok(model)
}

/// Loads and validates a trained sentiment model's `model.json`.
pub fn load_trained_sentiment(
    dir: &Path,
    card: &Card,
) -> Result<sentiment::TrainedSentiment, ModelError> {
    load_artefact(dir, card, sentiment::TrainedSentiment::from_json, |m| {
        m.version()
    })
}

/// Loads and validates a trained outcome model's `model.json`.
pub fn load_trained_outcome(
    dir: &Path,
    card: &Card,
) -> Result<outcome::TrainedOutcome, ModelError> {
    load_artefact(dir, card, outcome::TrainedOutcome::from_json, |m| {
        m.version()
    })
}

/// One loaded model, by task.
#[derive(Clone)]
pub enum Loaded {
    Sentiment(Arc<dyn SentimentModel>),
    Outcome(Arc<dyn OutcomeModel>),
}

impl Loaded {
    /// `models` with this model in place of the one of its task.
    pub fn replace_in(&self, models: &Models) -> Models {
        let mut m = models.clone();
        match self {
            Loaded::Sentiment(s) => m.sentiment = s.clone(),
            Loaded::Outcome(o) => m.outcome = o.clone(),
        }
        m
    }
}

/// Loads one model by version, whatever its task (its card says which).
pub fn load_version(dir: &Path, version: &str) -> Result<(Card, Loaded), ModelError> {
    let card = card(dir, version)?;
    let unknown = |task: &str| ModelError::Unsupported {
        version: card.version.clone(),
        message: format!("unknown {task} model kind {:?}", card.kind),
    };
    let loaded = match (card.task.as_str(), card.kind.as_str()) {
        ("sentiment", "vader_lexicon") => Loaded::Sentiment(Arc::new(VaderScorer::bundled())),
        ("sentiment", sentiment::KIND) => {
            Loaded::Sentiment(Arc::new(load_trained_sentiment(dir, &card)?))
        }
        ("sentiment", _) => return Err(unknown("sentiment")),
        ("outcome", "rules") => Loaded::Outcome(Arc::new(RulesOutcome)),
        ("outcome", outcome::KIND) => Loaded::Outcome(Arc::new(load_trained_outcome(dir, &card)?)),
        ("outcome", _) => return Err(unknown("outcome")),
        (task, _) => {
            return Err(ModelError::Unsupported {
                version: card.version.clone(),
                message: format!("unknown task {task:?}"),
            })
        }
    };
    Ok((card, loaded))
}

/// Reads `dir/active.toml`.
pub fn active(dir: &Path) -> Result<Active, ModelError> {
    let path = dir.join("active.toml");
    toml::from_str(&read(&path)?).map_err(|e| ModelError::Invalid {
        path,
        message: e.to_string(),
    })
}

/// Loads the active models from `dir`.
pub fn load(dir: &Path) -> Result<Models, ModelError> {
    let active = active(dir)?;
    let mut models = Models::bundled();
    for (task, version) in [
        ("sentiment", &active.sentiment),
        ("outcome", &active.outcome),
    ] {
        let (card, loaded) = load_version(dir, version)?;
        if card.task != task {
            return Err(ModelError::Unsupported {
                version: card.version.clone(),
                message: format!("is a {} model, not a {task} model", card.task),
            });
        }
        models = loaded.replace_in(&models);
    }
    Ok(models)
}

/// P(the `true` class) of each row of `x` from a fitted linfa logistic
/// regression, after the shape check linfa would make by panicking:
/// `Err((got, want))` columns when `x` is the wrong shape. linfa's positive
/// class is the more frequent one in training, so its probabilities are
/// turned round when that was `false`.
fn true_class_probabilities<S: ndarray::Data<Elem = f64>>(
    logistic: &linfa_logistic::FittedLogisticRegression<f64, bool>,
    x: &ndarray::ArrayBase<S, ndarray::Ix2>,
) -> Result<ndarray::Array1<f64>, (usize, usize)> {
    let want = logistic.params().len();
    if x.ncols() != want {
        return Err((x.ncols(), want));
    }
    let p = logistic.predict_probabilities(x);
    Ok(if logistic.labels().pos.class {
        p
    } else {
        p.mapv_into(|p| 1.0 - p)
    })
}

/// What the trained models' tests share: corrupting an artefact and
/// checking it is refused with the reason named.
#[cfg(test)]
mod artefact_tests {
    use serde_json::{json, Value};

    /// A corruption of an artefact's JSON, and what the refusal must say.
    pub(crate) type Case = (&'static str, fn(&mut Value));

    /// What every linfa logistic artefact must refuse: weights one short of
    /// the features, features one short of the weights, an unknown schema,
    /// an unknown field.
    pub(crate) const COMMON: [Case; 4] = [
        ("feature dimension mismatch", |v| {
            let params = &mut v["logistic"]["params"];
            params["data"].as_array_mut().unwrap().pop();
            params["dim"][0] = json!(params["data"].as_array().unwrap().len());
        }),
        ("feature dimension mismatch", |v| {
            v["features"].as_array_mut().unwrap().pop();
        }),
        ("schema 99", |v| v["schema"] = json!(99)),
        ("surprise", |v| v["surprise"] = json!(1)),
    ];

    /// Each case applied to a copy of `artefact` is refused by `load`, with
    /// an error that names the case's reason.
    pub(crate) fn refuses<T, E: std::fmt::Display>(
        artefact: &Value,
        cases: &[Case],
        load: impl Fn(&str) -> Result<T, E>,
    ) {
        for (needle, corrupt) in cases {
            let mut v = artefact.clone();
            corrupt(&mut v);
            let err = load(&v.to_string())
                .err()
                .unwrap_or_else(|| panic!("accepted an artefact that should fail on {needle}"))
                .to_string();
            assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_models_load_and_match_the_bundled_versions() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let m = load(&dir).unwrap();
        // The active sentiment model is the trained one; the bundled one is VADER.
        let active: Active =
            toml::from_str(&std::fs::read_to_string(dir.join("active.toml")).unwrap()).unwrap();
        assert_eq!(m.sentiment.version(), active.sentiment);
        assert_eq!(m.outcome.version(), active.outcome);
    }

    /// A temporary models directory whose active sentiment model is
    /// `version` with the given `model.json`.
    fn models_dir_with(tag: &str, version: &str, model_json: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fairtreat-{tag}-{}", std::process::id()));
        let m = dir.join(version);
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(
            dir.join("active.toml"),
            format!("sentiment = \"{version}\"\noutcome = \"outcome-rules-1\"\n"),
        )
        .unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let outcome = dir.join("outcome-rules-1");
        std::fs::create_dir_all(&outcome).unwrap();
        std::fs::copy(
            repo.join("outcome-rules-1/card.json"),
            outcome.join("card.json"),
        )
        .unwrap();
        std::fs::write(
            m.join("card.json"),
            format!(
                r#"{{"version":"{version}","task":"sentiment","kind":"{}","schema":{SCHEMA}}}"#,
                sentiment::KIND
            ),
        )
        .unwrap();
        std::fs::write(m.join("model.json"), model_json).unwrap();
        dir
    }

    #[test]
    fn a_corrupt_or_mismatched_sentiment_artefact_is_refused_with_a_clear_error() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let good = std::fs::read_to_string(repo.join("sentiment-logreg-1/model.json")).unwrap();

        // The committed artefact loads under another name only if it says so.
        let dir = models_dir_with("renamed", "sentiment-other-1", &good);
        let err = load(&dir).err().expect("a renamed artefact").to_string();
        assert!(err.contains("names version"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();

        // Truncated JSON.
        let dir = models_dir_with("corrupt", "sentiment-logreg-1", &good[..good.len() / 3]);
        let err = load(&dir).err().expect("a corrupt artefact").to_string();
        assert!(err.contains("model.json"), "{err}");
        assert!(err.contains("invalid sentiment artefact"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();

        // One weight fewer than features: linfa would panic on it.
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        let params = &mut v["logistic"]["params"];
        params["data"].as_array_mut().unwrap().pop();
        params["dim"][0] = serde_json::json!(params["data"].as_array().unwrap().len());
        let dir = models_dir_with("short", "sentiment-logreg-1", &v.to_string());
        let err = load(&dir).err().expect("a mismatched artefact").to_string();
        assert!(err.contains("feature dimension mismatch"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();

        // Another feature schema inside the artefact.
        let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
        v["schema"] = serde_json::json!(SCHEMA + 1);
        let dir = models_dir_with("schema", "sentiment-logreg-1", &v.to_string());
        let err = load(&dir).err().expect("another schema").to_string();
        assert!(err.contains("feature schema"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();

        // A missing model.json.
        let dir = models_dir_with("missing", "sentiment-logreg-1", "");
        std::fs::remove_file(dir.join("sentiment-logreg-1/model.json")).unwrap();
        let err = load(&dir).err().expect("no artefact").to_string();
        assert!(err.contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_card_with_another_feature_schema_is_refused() {
        let dir = std::env::temp_dir().join(format!("fairtreat-models-{}", std::process::id()));
        let m = dir.join("future-1");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(
            m.join("card.json"),
            r#"{"version":"future-1","task":"sentiment","kind":"vader_lexicon","schema":99}"#,
        )
        .unwrap();
        let err = card(&dir, "future-1").unwrap_err().to_string();
        assert!(err.contains("schema 99"), "{err}");
        assert!(card(&dir, "../etc").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
