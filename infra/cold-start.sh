#!/usr/bin/env bash
# Cold starts of the packaged functions against moto, compared with the reference function.
#
#   infra/cold-start.sh                 # 21 runs of each, in turn
#   COLD_START_RUNS=41 infra/cold-start.sh
#   infra/cold-start.sh --tsv results.tsv --label thin-lto    # extra flags go to the meter
#
# Uses the zips infra/package-sizes.sh built ($CARGO_TARGET_DIR/lambda/<name>/bootstrap.zip;
# it builds the missing ones), unpacks each as Lambda would, builds the meter
# (bench/cold-start), starts moto (infra/moto-start.sh), creates the table, seeds one product
# and the JWT signing secret (SSM SecureString, read by orders-create as on AWS), then runs the
# meter: products-get (GET the seeded product: 200), the reference (the same GET),
# orders-create (POST without a token: 401 after the app and token settings are built) and
# notifications-deliver (one SQS delivery command for a delivery that does not exist).
# Budgets, medians against the reference: products-get first response <= 1.1x, RSS <= 1.5x;
# exit status 1 when over. moto is stopped on exit. Needs `pip install 'moto[server]'`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
python="${PYTHON:-python3}"
# COLD_START_FUNCTIONS: which of the three to run besides the reference (default: all).
read -r -a functions <<<"${COLD_START_FUNCTIONS:-products-get orders-create notifications-deliver}"
reference=reference-products-get
product_id=01JCOLDSTARTPRODUCT0000001
table=bazaar-cold-start
secret_parameter=/bazaar/jwt-secret

missing=()
for name in "${functions[@]}"; do
  [[ -f "$target/lambda/$name/bootstrap.zip" ]] || missing+=(--bin "$name")
done
if ((${#missing[@]})) || [[ ! -f "$target/lambda/$reference/bootstrap.zip" ]]; then
  [[ ${#missing[@]} -gt 0 ]] || missing=(--bin products-get)
  "$here/package-sizes.sh" --no-check "${missing[@]}" >&2
fi

# COLD_START_METER: a meter binary built elsewhere (skips this build).
meter="${COLD_START_METER:-$target/release/bazaar-cold-start}"
if [[ -z "${COLD_START_METER:-}" ]]; then
  (cd "$root" && cargo build --release --quiet -p bazaar-cold-start)
fi

work="$(mktemp -d)"
pid_file="$work/moto.pid"
cleanup() {
  "$here/moto-stop.sh" "$pid_file" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for name in "${functions[@]}" "$reference"; do
  mkdir -p "$work/$name"
  "$python" -m zipfile -e "$target/lambda/$name/bootstrap.zip" "$work/$name"
  chmod +x "$work/$name/bootstrap"
done

endpoint="$("$here/moto-start.sh" "$pid_file")"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1

"$python" - "$endpoint" "$table" "$product_id" "$secret_parameter" <<'PY'
import secrets, sys
import boto3

endpoint, table, product_id, parameter = sys.argv[1:5]
dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
# The table's keys as docs/data-model.md describes them.
dynamodb.create_table(
    TableName=table,
    BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[
        {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
    ],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[{
        "IndexName": "gsi1",
        "KeySchema": [
            {"AttributeName": "gsi1pk", "KeyType": "HASH"},
            {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }],
)
now = "2026-01-01T00:00:00Z"
dynamodb.put_item(TableName=table, Item={
    "pk": {"S": f"PRODUCT#{product_id}"}, "sk": {"S": "PRODUCT"},
    "id": {"S": product_id}, "sku": {"S": "COLD-1"}, "name": {"S": "Cold-start teapot"},
    "description": {"S": "The product every cold start reads."}, "category_id": {"NULL": True},
    "price": {"M": {"amount": {"N": "2500"}, "currency": {"S": "EUR"}}},
    "available": {"N": "10"}, "reserved": {"N": "0"}, "images": {"L": []},
    "version": {"N": "1"}, "stock_version": {"N": "1"}, "status": {"S": "active"},
    "created_at": {"S": now}, "updated_at": {"S": now},
    "indexed_terms": {"L": [{"S": "cold"}, {"S": "start"}, {"S": "teapot"}]},
})
boto3.client("ssm", endpoint_url=endpoint).put_parameter(
    Name=parameter, Type="SecureString", Value=secrets.token_urlsafe(48))
PY

queues=()
for queue in notifications payments invoices deliveries; do
  queues+=(--env "BAZAAR_QUEUE_URL_${queue^^}=$endpoint/123456789012/bazaar-$queue")
done

declare -A events=(
  [products-get]="http:GET /api/v1/products/{id} /api/v1/products/$product_id"
  [$reference]="http:GET /api/v1/products/{id} /api/v1/products/$product_id"
  [orders-create]='http:POST /api/v1/orders /api/v1/orders {"items":[]}'
  [notifications-deliver]='sqs:bazaar-deliveries:{"user_id":"01JCOLDSTARTUSER0000000001","notification_id":"01JCOLDSTARTEVENT000000001-inbox"}'
)
# products-get first, then the reference, then the others; products-get is held to the budgets.
order=("$reference")
checks=()
for name in "${functions[@]}"; do
  if [[ "$name" == products-get ]]; then
    order=(products-get "${order[@]}")
    checks=(--check products-get)
  else
    order+=("$name")
  fi
done
runs=()
for name in "${order[@]}"; do
  runs+=(--function "$name=$work/$name/bootstrap" --event "$name=${events[$name]:?no event for $name}")
done

"$meter" \
  --runs "${COLD_START_RUNS:-21}" \
  --reference "$reference" "${checks[@]}" \
  "${runs[@]}" \
  --env "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" \
  --env "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
  --env "AWS_SESSION_TOKEN=testing" \
  --env BAZAAR_BACKEND=aws \
  --env "BAZAAR_TABLE=$table" \
  --env "BAZAAR_AWS_ENDPOINT_URL=$endpoint" \
  --env BAZAAR_BUCKET=bazaar-cold-start-assets \
  "${queues[@]}" \
  --env "BAZAAR_JWT_SECRET_PARAMETER=$secret_parameter" \
  --env BAZAAR_EMAIL_FROM=shop@example.com \
  --env BAZAAR_ALLOW_PRIVATE_TARGETS=false \
  --env RUST_LOG=info \
  "$@"
