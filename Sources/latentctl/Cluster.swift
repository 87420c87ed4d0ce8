import ArgumentParser
import Foundation
import LatentCluster

struct Cluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A LatentDB cluster's state, read from its etcd (docs/cluster.md).",
        subcommands: [ClusterStatus.self])
}

/// `latentctl cluster status`: every member etcd lists, and what each answers over RESP (role, offsets).
struct ClusterStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List the cluster's nodes from etcd, and ask each for its role and replication offset.")

    @Option(help: "etcd endpoints (comma-separated URLs).") var etcd = "http://127.0.0.1:2379"
    @Option(help: "Cluster name.") var clusterName = "latentdb"

    func run() throws {
        let client: EtcdClient
        let members: [(key: String, node: ClusterNode?)]
        do {
            client = try EtcdClient(endpoints: etcd)
            members = try client.list(prefix: ClusterKeys.nodes(clusterName)).map {
                ($0.key, try? JSONDecoder().decode(ClusterNode.self, from: Data($0.value)))
            }
        } catch {
            throw Failure("latentctl: \(error)")
        }
        print("cluster '\(clusterName)' in etcd \(etcd): \(members.count) node(s)")
        print("node                 address                  state     role     offset       version")
        for (key, node) in members {
            guard let node else {
                print("\(key): unreadable entry")
                continue
            }
            var state = "down", role = "-", offset = "-"
            let parts = node.advertise.split(separator: ":")
            let connection = parts.count == 2 ? Int(parts[1]).flatMap { try? RESPConnection(host: String(parts[0]), port: $0) } : nil
            connection?.setTimeout(seconds: 1)  // a frozen node is reported down, not waited for
            if let connection, case .bulk(let text?)? = try? connection.call(["INFO", "replication"]) {
                var fields: [String: String] = [:]
                for line in String(decoding: text, as: UTF8.self).split(separator: "\r\n") {
                    let kv = line.split(separator: ":", maxSplits: 1)
                    if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
                }
                state = "up"
                role = fields["role"] == "slave" ? "replica" : "leader"
                offset = fields["master_repl_offset"] ?? "-"
            }
            func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
            print(pad(node.id, 21) + pad(node.advertise, 25) + pad(state, 10) + pad(role, 9) + pad(offset, 13) + node.version)
        }
    }
}
