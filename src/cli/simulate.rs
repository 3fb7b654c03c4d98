//! `fairtreat simulate`: run the customer-and-observer simulator, compare
//! policies on it, and write logged decisions with outcomes for training and
//! off-policy evaluation.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use crate::sim::compare::{compare, PolicyRow};
use crate::sim::logs::simulate_logs;
use crate::sim::world::generate;

#[derive(Debug, Clone, Args)]
pub struct SimulateArgs {
    /// Interactions to simulate.
    #[arg(long, default_value_t = 20_000)]
    pub n: usize,
    /// Random seed (the same seed gives the same population and outcomes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Days the interactions are spread over.
    #[arg(long, default_value_t = 7)]
    pub days: i64,
    /// Policy file (TOML); default: the bundled policy.
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Models directory; default: ./models or the bundled models.
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Write the policy's logged decisions with outcomes here (JSONL).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn table(rows: &[PolicyRow]) -> String {
    let attrs: Vec<String> = rows
        .first()
        .map(|r| r.parity.iter().map(|(a, _)| a.clone()).collect())
        .unwrap_or_default();
    let mut out = format!(
        "{:<14} {:>7} {:>9} {:>16} {:>11} {:>9}",
        "policy", "perks", "perk rate", "recipient uplift", "cost", "p(good)"
    );
    for a in &attrs {
        out.push_str(&format!(" {:>13}", format!("parity {a}")));
    }
    out.push_str(&format!(" {:>19}\n", "observers' justice loss"));
    for r in rows {
        out.push_str(&format!(
            "{:<14} {:>7} {:>9.3} {:>16.4} {:>11.0} {:>9.3}",
            r.policy, r.perks, r.perk_rate, r.recipient_uplift, r.cost, r.p_good
        ));
        for (_, v) in &r.parity {
            out.push_str(&format!(" {:>13.3}", v));
        }
        out.push_str(&format!(" {:>23.3}\n", r.justice_loss));
    }
    out
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let policy = super::load_policy(args.policy.as_deref())?;
    let models = super::load_models(args.models.as_deref())?;
    let end = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar = indicatif::ProgressBar::new_spinner()
        .with_message(format!("simulating {} interactions", args.n));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let inputs = generate(args.seed, args.n, end, args.days);
    let rows = compare(&policy, &models, &inputs).await?;
    if let Some(path) = &args.out {
        bar.set_message(format!("writing logs to {}", path.display()));
        let logs = simulate_logs(&policy, &models, &inputs, args.seed).await?;
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?,
        );
        for rec in &logs {
            serde_json::to_writer(&mut f, rec)?;
            f.write_all(b"\n")?;
        }
        f.flush()?;
    }
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows));
        if let Some(path) = &args.out {
            println!(
                "\n{} logged decisions written to {}",
                args.n,
                path.display()
            );
        }
    }
    Ok(())
}
