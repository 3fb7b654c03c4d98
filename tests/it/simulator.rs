//! The policy comparison on the simulator (issue 4, criterion 2).

use fairtreat::domain::policy::Policy;
use fairtreat::service::Models;
use fairtreat::sim::compare::{compare, PolicyRow};
use fairtreat::sim::world::generate;
use time::macros::datetime;

fn rows(seed: u64, n: usize) -> Vec<PolicyRow> {
    let inputs = generate(seed, n, datetime!(2026-11-20 00:00 UTC), 7);
    actix_web::rt::System::new()
        .block_on(compare(&Policy::bundled(), &Models::bundled(), &inputs))
        .unwrap()
}

#[test]
fn fairtreat_halves_the_observers_justice_loss_of_greedy_and_keeps_nine_tenths_of_its_uplift() {
    let rows = rows(11, 6000);
    for r in &rows {
        eprintln!("{:<14} perks {:>5} rate {:.3} uplift {:.4} cost {:>9.0} loss {:>8.3} p_good {:.3} parity {:?}", r.policy, r.perks, r.perk_rate, r.recipient_uplift, r.cost, r.justice_loss, r.p_good, r.parity);
    }
    let get = |name: &str| rows.iter().find(|r| r.policy == name).unwrap();
    let (greedy, ours, none) = (get("greedy"), get("fairtreat"), get("no perks"));
    assert_eq!(none.perks, 0);
    assert_eq!(none.recipient_uplift, 0.0);
    assert!(greedy.justice_loss > 0.0);
    assert!(
        ours.justice_loss <= 0.5 * greedy.justice_loss,
        "{} vs {}",
        ours.justice_loss,
        greedy.justice_loss
    );
    assert!(
        ours.recipient_uplift >= 0.9 * greedy.recipient_uplift,
        "{} vs {}",
        ours.recipient_uplift,
        greedy.recipient_uplift
    );
}
