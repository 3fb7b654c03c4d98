#!/usr/bin/env python3
"""Writes N decision request bodies, one JSON object per line, for `oha -Z`.

Same population as decisions.lua: 10,000 customers over tiers and regions,
~300-character texts, a unique interaction id per line (a repeated id would
measure an idempotent replay, not a decision). oha sends a random line per
request, not each line once, so with as many lines as requests about a third
of the requests repeat a line and are answered as replays (BENCHMARKS.md).
Usage: bodies.py N OUT [SEED]
"""
import json
import random
import sys

TEXTS = [
    ("complaint", 1, "My order arrived two weeks late and the box was crushed, the glass inside was broken into pieces. I wrote to support three times and nobody answered any of my emails. This is the second time this happens and I am really disappointed, I expected much better from a shop I have been loyal to for years."),
    ("complaint", 2, "The jacket I bought started to fall apart after one wash, the seams opened on both sides and the zip broke. I paid full price for it and the product page promised premium quality. Please tell me how you intend to fix this, because right now I feel cheated and I am telling my friends about it."),
    ("review", 3, "Delivery was on time and the courier was friendly, but the blender is louder than I expected and the lid does not close well unless you press it hard. It does the job for smoothies, I just wish the description had been more honest about the noise. Three stars, might buy again if the price drops."),
    ("review", 5, "Absolutely love these running shoes. They arrived a day early, fit perfectly and after two hundred kilometres they still feel great. Customer service even answered my sizing question within an hour before I ordered. Thank you for the great experience, I have already recommended you to my whole running club."),
    ("question", None, "Hello, I ordered a sofa last Tuesday and the tracking page has said preparing for six days now. Could you tell me when it will be shipped and whether I can still change the delivery address to my new flat? I will be moving at the end of the month and want to be sure someone is home to receive it."),
    ("praise", 5, "Just wanted to say a big thank you to Maria from your support team, she sorted out my billing problem in five minutes after I had been stuck for a week with another company. Friendly, quick and clear. This is why I keep shopping with you and why I will keep recommending you to everyone who asks me."),
    ("complaint", 1, "I was charged twice for the same order and when I called, the agent hung up on me. It has been ten days and the money is still not back on my card. I need this refunded now, this is unacceptable and if it is not solved this week I will file a complaint with my bank and leave reviews everywhere."),
    ("mention", None, "Saw the new autumn collection in the shop window today, the colours look nice but the prices went up again compared to last year. Curious whether the quality improved as well or whether it is the same stuff with a new label. Anyone tried the wool coats yet? Thinking about getting one for the winter."),
]
CHANNELS = ["review_site", "social", "email", "chat", "phone", "in_app", "survey"]
TIERS = ["bronze", "silver", "gold", "platinum"]
REGIONS = ["EU", "NA", "APAC", "LATAM", "MEA"]


def body(rng, run, i):
    kind, rating, text = rng.choice(TEXTS)
    c = rng.randint(1, 10000)
    public = rng.random() < 0.4
    b = {
        "interaction_id": f"oha-{run}-{i}",
        "customer": {
            "id": f"c-{c}",
            "tenure_days": (c * 37) % 3000,
            "lifetime_value": 50 + (c * 13) % 4000,
            "attributes": {"tier": TIERS[c % 4], "region": REGIONS[(c // 7) % 5]},
        },
        "channel": rng.choice(CHANNELS),
        "public": public,
        "audience": rng.randint(0, 20000) if public else 0,
        "kind": kind,
        "text": text,
        "order_value": round(10 + rng.random() * 190, 2),
    }
    if rating is not None:
        b["rating"] = rating
    return json.dumps(b, separators=(",", ":"))


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    rng = random.Random(seed)
    with open(out, "w") as f:
        for i in range(n):
            f.write(body(rng, seed, i) + "\n")


if __name__ == "__main__":
    main()
