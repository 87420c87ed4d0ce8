#!/usr/bin/env python3
"""Matrix factorisation with Spark MLlib's ALS, for ratings too big for one machine; writes the same directory
as `latentctl train` (users.npy, items.npy, users.ids, items.ids, model.json), so `latentctl load` reads it.

    python3 tools/spark_als.py RATINGS --out DIR [--factors 10] [--epochs 10] [--reg 0.1] [--master local[*]]

RATINGS: MovieLens ratings.csv (userId,movieId,rating[,timestamp] with a header), ratings.dat (::) or u.data
(tabs), or plain user,item,rating. Spark's ALS is the weighted-lambda ALS that `latentctl train --method als`
also runs; ids are strings, mapped to Spark's integer ids and back.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ratings")
    ap.add_argument("--out", required=True)
    ap.add_argument("--factors", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--reg", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--test-fraction", type=float, default=0.2)
    ap.add_argument("--master", default="local[*]")
    return ap.parse_args()


def read_lines(spark, path):
    first = open(path, encoding="utf-8").readline()
    text = spark.sparkContext.textFile(path)
    if "::" in first:
        rows = text.map(lambda l: l.split("::"))
    elif "\t" in first:
        rows = text.map(lambda l: l.split("\t"))
    else:
        rows = text.map(lambda l: l.split(","))
    header = first.strip().split(",")
    has_header = len(header) >= 3 and not _is_number(header[2])
    if has_header:
        rows = rows.filter(lambda f: f[:3] != header[:3])
    return rows.filter(lambda f: len(f) >= 3).map(lambda f: (f[0].strip(), f[1].strip(), float(f[2])))


def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def main():
    args = parse_args()
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(args.master).appName("latentdb-als")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    rows = read_lines(spark, args.ratings).cache()
    users = sorted(rows.map(lambda r: r[0]).distinct().collect())
    items = sorted(rows.map(lambda r: r[1]).distinct().collect())
    uidx = {u: n for n, u in enumerate(users)}
    iidx = {i: n for n, i in enumerate(items)}
    bu, bi = spark.sparkContext.broadcast(uidx), spark.sparkContext.broadcast(iidx)
    df = rows.map(lambda r: (bu.value[r[0]], bi.value[r[1]], r[2])).toDF(["user", "item", "rating"]).cache()

    als = ALS(rank=args.factors, maxIter=args.epochs, regParam=args.reg, userCol="user", itemCol="item",
              ratingCol="rating", coldStartStrategy="drop", seed=args.seed)
    train, test = df.randomSplit([1 - args.test_fraction, args.test_fraction], seed=args.seed)
    rmse = RegressionEvaluator(metricName="rmse", labelCol="rating").evaluate(als.fit(train).transform(test))
    mae = RegressionEvaluator(metricName="mae", labelCol="rating").evaluate(als.fit(train).transform(test))
    model = als.fit(df)

    def matrix(factors, n):
        m = np.zeros((n, args.factors), dtype="<f4")
        for row in factors.collect():
            m[row["id"]] = row["features"]
        return m

    os.makedirs(args.out, exist_ok=True)
    staging = os.path.join(args.out, ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    np.save(os.path.join(staging, "users.npy"), matrix(model.userFactors, len(users)))
    np.save(os.path.join(staging, "items.npy"), matrix(model.itemFactors, len(items)))
    with open(os.path.join(staging, "users.ids"), "w") as f:
        f.write("\n".join(users) + "\n")
    with open(os.path.join(staging, "items.ids"), "w") as f:
        f.write("\n".join(items) + "\n")
    digest = hashlib.sha256(open(args.ratings, "rb").read()).hexdigest()
    json.dump({"method": "als (spark mllib)", "biased": False, "factors": args.factors, "epochs": args.epochs,
               "regularization": args.reg, "seed": args.seed, "users": len(users), "items": len(items),
               "ratings": df.count(), "data_checksum_sha256": digest, "vector_dimension": args.factors,
               "metrics": {"rmse": rmse, "mae": mae, "evaluated_on": f"hold-out {args.test_fraction}"},
               "serving_vectors": "user . item = p_u . q_i = the predicted rating", "spark_master": args.master},
              open(os.path.join(staging, "model.json"), "w"), indent=2, sort_keys=True)
    for name in ["users.npy", "items.npy", "users.ids", "items.ids", "model.json"]:
        os.replace(os.path.join(staging, name), os.path.join(args.out, name))
    shutil.rmtree(staging)
    spark.stop()
    print(f"wrote {args.out}: {len(users)} users, {len(items)} items, k={args.factors}; hold-out RMSE {rmse:.4f} MAE {mae:.4f}")


if __name__ == "__main__":
    sys.exit(main())
