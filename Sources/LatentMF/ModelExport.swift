import Foundation

/// Writes a trained model as the directory `latentctl load` reads: users.npy, items.npy (float32, C order,
/// n x k), users.ids, items.ids (one id per line, in row order) and model.json.
public enum ModelExport {
    public static func write(_ model: Model, data: RatingsData, parameters p: TrainingParameters,
                             metrics: [String: Any], to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Written to a temporary directory and renamed into place: nothing half-written is ever left.
        let staging = directory + "/.staging-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.removeItem(atPath: staging)
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        let (users, items) = model.servingVectors()
        try NPY.write(users, to: staging + "/users.npy")
        try NPY.write(items, to: staging + "/items.npy")
        try (data.userIds.joined(separator: "\n") + "\n").write(toFile: staging + "/users.ids", atomically: true, encoding: .utf8)
        try (data.itemIds.joined(separator: "\n") + "\n").write(toFile: staging + "/items.ids", atomically: true, encoding: .utf8)
        var json: [String: Any] = [
            "method": p.method.rawValue, "biased": p.biased, "factors": p.factors, "epochs": p.epochs,
            "learning_rate": p.learningRate, "regularization": p.regularization, "seed": p.seed,
            "global_mean": model.globalMean, "users": data.userCount, "items": data.itemCount,
            "ratings": data.ratings.count, "data_checksum_fnv1a64": String(format: "%016llx", data.checksum),
            "vector_dimension": users.columns, "metrics": metrics,
        ]
        if p.method == .ials {
            json["alpha"] = p.alpha
            json["confidence"] = p.confidence.rawValue
            json["log_epsilon"] = p.logEpsilon
            json["cg_steps"] = p.cgSteps
        }
        if p.method == .ials {
            json["serving_vectors"] = "user . item = x_u . y_i, the predicted preference (implicit ALS): higher ranks first"
        } else if p.method == .bpr {
            json["serving_vectors"] = "item bias folded in: item = [q_i, b_i], user = [p_u, 1]; user . item = p_u . q_i + b_i, "
                + "the BPR score: higher ranks first"
        } else if p.method == .svdpp {
            json["serving_vectors"] = "SVD++ with biases folded in: item = [q_i, b_i], user = [p_u + |N(u)|^-1/2 sum y_j, 1]; "
                + "user . item ranks a user's items as the predicted rating does"
        } else if p.biased {
            json["serving_vectors"] = "biases folded in: item = [q_i, b_i], user = [p_u, 1]; user . item = p_u . q_i + b_i, "
                + "which ranks a user's items as the predicted rating mean + b_u + b_i + p_u . q_i does"
        } else if p.method == .als {
            json["serving_vectors"] = "user . item = p_u . q_i; the predicted rating is global_mean + p_u . q_i"
        } else {
            json["serving_vectors"] = "user . item = p_u . q_i = the predicted rating"
        }
        let encoded = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try encoded.write(to: URL(fileURLWithPath: staging + "/model.json"))
        for name in ["users.npy", "items.npy", "users.ids", "items.ids", "model.json"] {
            let target = directory + "/" + name
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.moveItem(atPath: staging + "/" + name, toPath: target)
        }
        try FileManager.default.removeItem(atPath: staging)
    }
}
