//! The partition-heat model (`infra/heat_model.py`) on a recording whose answer is known:
//! shop-wide keys scale with the order rate, a product takes its flash-sale share of every
//! order, and keys over half a partition's limit are flagged.

use std::process::Command;

use serde_json::json;

fn seconds(per_second: [u64; 2]) -> serde_json::Value {
    // Ten seconds from 1000 to 1009, the same counts each second.
    let mut map = serde_json::Map::new();
    for second in 1000..1010 {
        map.insert(second.to_string(), json!(per_second));
    }
    serde_json::Value::Object(map)
}

#[test]
fn recorded_heat_is_scaled_to_the_target_rate() {
    let dir = std::env::temp_dir().join(format!("bazaar-heat-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    // 100 orders and 500 catalogue reads in 10 s: 10 orders/s, 50 reads/s.
    let summary = json!({"endpoints": [
        {"type": "POST", "name": "/orders", "requests": 100, "failures": 0},
        {"type": "GET", "name": "/products/{id}", "requests": 500, "failures": 0},
    ]});
    let product = "PRODUCT#01JAAAAAAAAAAAAAAAAAAAAAAA";
    let heat = json!({
        "partitions": [
            // Two shards, four and one writes a second: 2,500/s each at 1,000 times the rate.
            {"key": "OUTBOX#3", "seconds": seconds([0, 4])},
            {"key": "OUTBOX#5", "seconds": seconds([0, 1])},
            // Twenty product writes a second for ten orders: two per order; 20 % of 10,000
            // orders/s on one product is 4,000 writes/s.
            {"key": product, "seconds": seconds([5, 20])},
            // One order's own partition: its recorded peak, however fast the shop.
            {"key": "ORDER#01JBBBBBBBBBBBBBBBBBBBBBBB", "seconds": seconds([1, 3])},
        ],
        "items": [
            {"key": format!("{product}|PRODUCT"), "seconds": seconds([0, 20])},
        ],
    });
    let heat_path = dir.join("heat.json");
    let summary_path = dir.join("summary.json");
    std::fs::write(&heat_path, heat.to_string()).expect("write the heat");
    std::fs::write(&summary_path, summary.to_string()).expect("write the summary");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/heat_model.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&heat_path)
        .arg(&summary_path)
        .args(["--shards", "2"])
        .output()
        .expect("run python3 infra/heat_model.py");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("10.0 orders/s, 50.0 catalogue reads/s"),
        "{text}"
    );
    assert!(
        text.contains("| `OUTBOX#<n>` | 2,500 | 250 % **over half** |"),
        "{text}"
    );
    assert!(
        text.contains("| `PRODUCT#<id>` | 4,000 | 400 % **over half** |"),
        "{text}"
    );
    assert!(text.contains("| `ORDER#<id>` | 3 | 0 % |"), "{text}");
    // The product item: 4,000 writes/s, so another write lands in almost every window.
    assert!(
        text.contains("hottest written item: `PRODUCT#<id>` at 4,000 writes/s; transaction-conflict rate 100.0 %"),
        "{text}"
    );
    assert!(
        text.contains("2 key pattern(s) above half a partition's limit"),
        "{text}"
    );
}
