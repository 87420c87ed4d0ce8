import Foundation
import LatentFilter
import LatentIndex
import LatentVectors

/// How one search ran (tests and the benchmark read it; the planner below chooses it).
public enum SearchPlan: String, Sendable {
    /// The index's search (HNSW walk, IVF probes), with any filter applied inside it.
    case index
    /// An exact scan of the slots that pass the filter: few elements match.
    case filteredScan
    /// An exact scan of every element (TRUTH, FLAT).
    case fullScan
    /// The HNSW walk of a frequently used filter's own graph (its match index, see FilterMatches).
    case matchIndex
}

extension Collection {
    /// Below this estimated number of matching elements a filtered query scans the matches exactly
    /// instead of walking the index: a filtered HNSW walk visits about ef / selectivity nodes, so at
    /// low selectivity scanning the few matches is both exact and cheaper.
    static let filteredScanMatches = 2_000
    /// ... and below this selectivity whatever the count (the walk would visit most of the graph).
    static let filteredScanSelectivity = 0.02
    /// Live slots sampled to estimate a filter's selectivity.
    static let selectivitySample = 512

    /// The best `params.k` elements for `query`, best first, ties by id. `exact` forces a full scan.
    /// What the index has not seen yet (the pending tail) is scanned exactly and merged in. `filter`
    /// and `excluding` constrain the search itself (never a post-filter): whenever at least `k`
    /// elements qualify, `k` are returned.
    ///
    /// `filterBudget` (VSIM's FILTER-EF) asks for Redis' bounded effort instead: only the `filterBudget`
    /// nearest elements are tested against the filter, so fewer than `k` may come back.
    ///
    /// `seen` (a users collection's seen list) is excluded the same way, through a slot set cached per user.
    public func search(_ query: [Float], _ params: SearchParameters, exact: Bool = false, withAttributes: Bool = false,
                       excluding: Set<ElementID> = [], seen: SeenSnapshot? = nil, filter: FilterExpression? = nil,
                       filterBudget: Int? = nil) throws -> [SearchHit] {
        try searchPlanned(query, params, exact: exact, withAttributes: withAttributes, excluding: excluding, seen: seen,
                          filter: filter, filterBudget: filterBudget).hits
    }

    /// `search`, also telling which plan ran. `forcing` overrides the planner (tests and benchmarks use it
    /// to measure each plan on the same data).
    public func searchPlanned(_ query: [Float], _ params: SearchParameters, exact: Bool = false, withAttributes: Bool = false,
                              excluding: Set<ElementID> = [], seen: SeenSnapshot? = nil, filter: FilterExpression? = nil,
                              filterBudget: Int? = nil, forcing: SearchPlan? = nil) throws -> (hits: [SearchHit], plan: SearchPlan) {
        try Validation.count(params.k)
        if let budget = filterBudget, let filter {
            // Redis' FILTER-EF: the `budget` nearest (allowed) elements, then the filter on them in order.
            var wide = params
            wide.k = max(1, budget)
            wide.ef = max(params.ef ?? 0, budget)
            // A budget covering the whole set tests every element exactly. A graph walk that delivers fewer
            // candidates than the budget allows (an element with no incoming links after pruning, e.g. one
            // pointing away from all others under a small M) is redone exactly: Redis' bounded effort is
            // "the n nearest", never "the n nearest the walk happened to reach".
            let available = max(0, count - excluding.count - (seen?.items.count ?? 0))
            var candidates = try searchPlanned(query, wide, exact: exact || budget >= count, withAttributes: false,
                                               excluding: excluding, seen: seen, forcing: forcing)
            if candidates.hits.count < min(budget, available) && forcing == nil {
                candidates = try searchPlanned(query, wide, exact: true, withAttributes: false, excluding: excluding, seen: seen)
            }
            let kept: [SearchHit] = state.withReadLock {
                let bound = BoundFilter(filter, table: attributeTable)
                return Array(candidates.hits.filter { hit in slotOf[hit.id].map { bound.matches(slot: $0) } ?? false }.prefix(params.k))
            }
            guard withAttributes else { return (kept, candidates.plan) }
            var out: [SearchHit] = []
            for hit in kept {
                guard let attrs = try? self.attributes(of: hit.id) else { continue }  // deleted meanwhile
                out.append(SearchHit(id: hit.id, score: hit.score, attributes: attrs))
            }
            return (out, candidates.plan)
        }
        // COUNT is bounded by the collection's size (Redis allows any COUNT): a huge one allocates no
        // more than all hits.
        var params = params
        params.k = min(params.k, max(1, count))
        try Validation.vector(query, collection: name, dimension: dimension, metric: metric)
        if let ef = params.ef, ef < 1 { throw EngineError.invalidCount(ef) }
        let (hits, plan): ([(ElementID, Double, UInt32)], SearchPlan) = state.withReadLock {
            let ids = idOf
            let none = ElementID(bytes: [])
            let ranksBefore: (UInt32, UInt32) -> Bool = { a, b in (ids[Int(a)] ?? none) < (ids[Int(b)] ?? none) }
            let bound = filter.map { BoundFilter($0, table: attributeTable) }
            if bound?.matchesNothing == true { return ([], .filteredScan) }
            // What this expression matched, from the cache when the attributes did not change since.
            var known: FilterMatches?
            if let filter, let bound {
                let slots = buffer.slotCount
                known = filterMatchCache.matches(filter.source, version: attributeTable.version, dimension: dimension) { bound.matchingSlots(below: slots) }
            }
            // Ad-hoc exclusions (EXCLUDE, FOLDIN's items) are few: a hash set. A seen list may be long: its
            // cached slot set costs one chunk lookup per test whatever its length.
            let excludedSlots = Set(excluding.compactMap { slotOf[$0] })
            let seenSlots = seen.map { seenSlotsLocked($0) }.flatMap { $0.isEmpty ? nil : $0 }
            var excludes: SlotPredicate?
            switch (excludedSlots.isEmpty, seenSlots) {
            case (false, let seenSlots?): excludes = { excludedSlots.contains($0) || seenSlots.contains($0) }
            case (false, nil): excludes = { excludedSlots.contains($0) }
            case (true, let seenSlots?): excludes = { seenSlots.contains($0) }
            case (true, nil): excludes = nil
            }
            var allows: SlotPredicate?
            if let known {
                if let excludes { allows = { !excludes($0) && known.contains($0) } } else { allows = { known.contains($0) } }
            } else if let bound {
                if let excludes { allows = { !excludes($0) && bound.matches(slot: $0) } } else { allows = { bound.matches(slot: $0) } }
            } else if let excludes {
                allows = { !excludes($0) }
            }
            params.allows = allows
            let (found, plan): ([Neighbor], SearchPlan) = query.withUnsafeBufferPointer { q in
                let q = q.baseAddress!  // Validation: dimension >= 1 components, so the buffer has an address.
                let (chosen, fraction) = choosePlan(exact: exact, filtered: bound != nil, allows: allows, knownMatches: known?.slots.count)
                var plan = forcing ?? chosen
                var params = params
                params.selectivity = fraction
                if plan == .index && (exact || index.scansCollectionBuffer) { plan = .fullScan }
                // A frequent filter's own graph, once built, replaces the walk, and also the exact scan of
                // matches too many to scan cheaply (their vectors hold over `matchIndexMinFloats` floats).
                var matchIndex: FilterMatches.MatchIndex?
                if forcing == nil, !exact, index.spec.kind == .hnsw, let known,
                   plan == .index || (plan == .filteredScan && known.slots.count * dimension >= FilterMatches.matchIndexMinFloats) {
                    matchIndex = startOrUseMatchIndex(known)
                    if matchIndex != nil { plan = .index }
                }
                if plan == .index {
                    var merged: [Neighbor]
                    if let matchIndex {
                        // The filter's own graph: every node matches, only exclusions remain to test.
                        let rows = matchIndex.rows.slots
                        var inner = params
                        inner.selectivity = nil
                        inner.allows = excludes.map { excludes in { !excludes(rows[Int($0)]) } }
                        merged = matchIndex.graph.search(q, inner).map { Neighbor(slot: rows[Int($0.slot)], distance: $0.distance) }
                        plan = .matchIndex
                    } else {
                        merged = index.search(q, params)
                    }
                    if !pending.isEmpty {
                        merged += FlatIndex.scan(q, slots: pending.elements, in: buffer, metric: metric, k: params.k,
                                                 allows: allows, ranksBefore: ranksBefore)
                    }
                    merged.sort { $0.distance < $1.distance || ($0.distance == $1.distance && ranksBefore($0.slot, $1.slot)) }
                    var seen = Set<UInt32>()
                    let walked = Array(merged.filter { buffer.isLive(Int($0.slot)) && seen.insert($0.slot).inserted }.prefix(params.k))
                    // A walk can come back short (a filter cutting the graph, a graph not reaching every
                    // node): then the exact scan decides, so `k` results come whenever `k` qualify.
                    if walked.count >= params.k || allows == nil { return (walked, plan) }
                    plan = .filteredScan
                }
                if plan == .filteredScan, let allows {
                    if let gathered = known?.gatheredVectors(from: buffer) {
                        // The matches' vectors back to back: a sequential scan (the copy is as of now).
                        return (gathered.scan(q, metric: metric, k: params.k, excludes: excludes, ranksBefore: ranksBefore), .filteredScan)
                    }
                    var matching: [UInt32] = []
                    if let known {
                        matching = known.slots.filter { buffer.isLive(Int($0)) && !(excludes?($0) ?? false) }
                    } else if let columnWise = bound?.matchingSlots(below: buffer.slotCount) {
                        // Column at a time; liveness and exclusions are tested on the matches only.
                        matching = columnWise.filter { buffer.isLive(Int($0)) && !(excludes?($0) ?? false) }
                    } else {
                        for s in 0..<buffer.slotCount where buffer.isLive(s) && allows(UInt32(s)) { matching.append(UInt32(s)) }
                    }
                    return (FlatIndex.scan(q, slots: matching, in: buffer, metric: metric, k: params.k, ranksBefore: ranksBefore), .filteredScan)
                }
                return (FlatIndex.scan(q, in: buffer, metric: metric, k: params.k, allows: allows, ranksBefore: ranksBefore), .fullScan)
            }
            var hits: [(ElementID, Double, UInt32)] = []
            for n in found {
                guard let id = idOf[Int(n.slot)] else { continue }
                hits.append((id, metric.score(fromDistance: n.distance), n.slot))
                if hits.count == params.k { break }
            }
            return (hits, plan)
        }
        guard withAttributes else { return (hits.map { SearchHit(id: $0.0, score: $0.1, attributes: nil) }, plan) }
        // Attributes are read from the store outside the lock; a slot freed and reused meanwhile would
        // give another element's attributes, so each read is checked against the hit's id afterwards and
        // a hit whose element was deleted meanwhile is left out.
        var out: [SearchHit] = []
        out.reserveCapacity(hits.count)
        for (id, score, slot) in hits {
            let attrs = try attributes(slot: slot)
            guard state.withReadLock({ Int(slot) < idOf.count && idOf[Int(slot)] == id }) else { continue }
            out.append(SearchHit(id: id, score: score, attributes: attrs))
        }
        return (out, plan)
    }

    /// The match index of a frequent filter, when it is current; otherwise counts this use and, when the
    /// filter has been used often enough, queues the match index's build. Under the read lock.
    private func startOrUseMatchIndex(_ matches: FilterMatches) -> FilterMatches.MatchIndex? {
        let (ready, build) = matches.matchIndex(for: buffer, metric: metric)
        if let build {
            let (logger, name, rows) = (indexer.logger, self.name, matches.slots.count)
            indexer.build {
                let start = DispatchTime.now().uptimeNanoseconds
                build()
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                logger.info("filter match index built", metadata: ["collection": "\(name)", "matches": "\(rows)",
                                                                   "seconds": "\(String(format: "%.2f", seconds))"])
            }
        }
        return ready
    }

    /// The planner, under the read lock. Unfiltered searches use the index unless told to be exact; a
    /// filter's selectivity is estimated on a fixed sample of live slots, and few expected matches
    /// (or a low selectivity) choose the exact scan of the matches.
    /// Also returns the filter's selectivity when it was computed (IVF's list scan uses it).
    private func choosePlan(exact: Bool, filtered: Bool, allows: SlotPredicate?, knownMatches: Int?) -> (SearchPlan, Double?) {
        // The exact fraction when the filter's matches are known (cached), else a sample's estimate.
        func selectivity(_ allows: SlotPredicate) -> Double {
            guard let knownMatches else { return estimateSelectivity(allows) }
            return slotOf.isEmpty ? 0 : min(1, Double(knownMatches) / Double(slotOf.count))
        }
        if exact || index.scansCollectionBuffer {
            // FLAT and TRUTH are exact either way; a selective filter is cheaper to test first.
            guard filtered, let allows else { return (.fullScan, nil) }
            let fraction = selectivity(allows)
            return (fraction < 0.25 ? .filteredScan : .fullScan, fraction)
        }
        guard filtered, let allows else { return (.index, nil) }
        let fraction = selectivity(allows)
        let expected = fraction * Double(slotOf.count)
        if fraction < Self.filteredScanSelectivity || expected <= Double(Self.filteredScanMatches) { return (.filteredScan, fraction) }
        return (.index, fraction)
    }

    /// The fraction of a fixed, evenly spaced sample of live slots that `allows` accepts.
    private func estimateSelectivity(_ allows: SlotPredicate) -> Double {
        let n = buffer.slotCount
        guard n > 0 else { return 0 }
        let step = max(1, n / Self.selectivitySample)
        var sampled = 0, accepted = 0
        var s = step / 2
        while s < n {
            if buffer.isLive(s) {
                sampled += 1
                if allows(UInt32(s)) { accepted += 1 }
            }
            s += step
        }
        return sampled == 0 ? 0 : Double(accepted) / Double(sampled)
    }
}
