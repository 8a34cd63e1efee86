#!/usr/bin/env bash
# A smoke test of Cirrus-TS on a real AWS account (not run by the tests; costs a few cents):
# deploy the worker to Lambda, put a Higgs-like dataset in S3, train with 2 Lambda workers over the
# s3 channel (and over a parameter server, if CIRRUS_SMOKE_PS names one), then remove everything it
# created: the function, its role, and the S3 prefix. Cleanup also runs on failure and on Ctrl-C.
#
#   AWS_REGION=eu-west-1 CIRRUS_SMOKE_BUCKET=my-bucket examples/aws-smoke.sh
#   CIRRUS_SMOKE_PS='203.0.113.10:7070?token=...'  also train over `cirrus ps --host 0.0.0.0 --token ...`
#                                                 running on an instance the function can reach
# Needs: AWS credentials in the standard chain (AWS_PROFILE, env, SSO...), an existing bucket in
# AWS_REGION, the `aws` CLI (only to delete the prefix at the end), and `npm install` done here.
set -euo pipefail

: "${AWS_REGION:?set AWS_REGION, e.g. eu-west-1}"
: "${CIRRUS_SMOKE_BUCKET:?set CIRRUS_SMOKE_BUCKET to an existing S3 bucket in $AWS_REGION}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cirrus() { node "$root/bin/cirrus.js" "$@"; }

stamp="$(date +%Y%m%d%H%M%S)-$$"
function_name="cirrus-smoke-$stamp"
prefix="cirrus-smoke/$stamp/"
store="s3://$CIRRUS_SMOKE_BUCKET/$prefix"
work="$(mktemp -d)"

cleanup() {
  status=$?
  echo "smoke: cleaning up ($function_name, $store)" >&2
  cirrus deploy --function "$function_name" --region "$AWS_REGION" --remove || echo "smoke: remove the function $function_name by hand" >&2
  aws s3 rm --recursive --quiet "$store" --region "$AWS_REGION" || echo "smoke: delete $store by hand" >&2
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "smoke: deploying $function_name" >&2
cirrus deploy --function "$function_name" --region "$AWS_REGION" --store "$store" --memory 2048 --timeout 300

echo "smoke: writing a dataset to $store" >&2
cirrus datasets generate higgs "$work/higgs.csv" --rows 40000 --seed 1
cirrus preprocess "$work/higgs.csv" --format csv --label-column 0 --name higgs --normalize zscore --shard-rows 10000 --store "$store"

launcher="{\"type\":\"lambda\",\"functionName\":\"$function_name:live\",\"region\":\"$AWS_REGION\"}"
echo "smoke: training over s3" >&2
cirrus train "$root/examples/configs/higgs-dense-lr.json" --set "store=$store" --set channel=s3 --set workers=2 --set epochs=2 --set "launcher=$launcher"

if [ -n "${CIRRUS_SMOKE_PS:-}" ]; then
  echo "smoke: training over the parameter server at ${CIRRUS_SMOKE_PS%%\?*}" >&2
  cirrus train "$root/examples/configs/higgs-dense-lr.json" --set "store=$store" --set "channel=ps://$CIRRUS_SMOKE_PS" --set workers=2 --set epochs=2 --set "launcher=$launcher"
fi
echo "smoke: done" >&2
