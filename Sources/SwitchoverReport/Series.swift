import SwitchoverCore
import SwitchoverStore

/// One point of a chart series: seconds since the run started, and a value.
struct Point: Hashable {
    var t: Double
    var v: Double
}

/// A series with gaps: each segment is drawn as one unbroken line. A gap is where the data
/// means nothing (a counter went down because the load balancer restarted).
struct Series {
    var name: String
    var label: String
    var color: String
    var dashed = false
    /// Step line (hold the value until the next point) instead of straight segments.
    var step = false
    var segments: [[Point]]

    var pointCount: Int { segments.reduce(0) { $0 + $1.count } }
    var maxValue: Double { segments.joined().map(\.v).max() ?? 0 }
}

/// Thins `points` to at most `limit` points by min/max-preserving bucketing: the points are cut
/// into `limit / 2` buckets of consecutive points and each bucket keeps only its lowest and its
/// highest point, in time order. Unlike keeping every n-th point, a spike (one bad second of
/// 5xx in a day-long drain) or a weight step always survives, and the drawing stays within a
/// pixel of the full series at chart widths; the cost is linear in the input.
func downsample(_ points: [Point], limit: Int) -> [Point] {
    guard points.count > limit, limit >= 2 else { return points }
    let buckets = limit / 2
    var result: [Point] = []
    result.reserveCapacity(buckets * 2)
    for bucket in 0..<buckets {
        let start = bucket * points.count / buckets
        let end = (bucket + 1) * points.count / buckets
        guard start < end else { continue }
        var low = start
        var high = start
        for index in start..<end {
            if points[index].v < points[low].v { low = index }
            if points[index].v > points[high].v { high = index }
        }
        if low == high {
            result.append(points[low])
        } else {
            result.append(points[min(low, high)])
            result.append(points[max(low, high)])
        }
    }
    return result
}

/// Downsamples a segmented series so that all its segments together stay within `limit` points,
/// each segment getting a share proportional to its length (at least 2).
func downsample(_ series: Series, limit: Int) -> Series {
    let total = series.pointCount
    guard total > limit else { return series }
    var thinned = series
    thinned.segments = series.segments.map { segment in
        let share = max(2, segment.count * limit / total)
        return downsample(segment, limit: share)
    }
    return thinned
}

/// Per-second rates from successive cumulative counters. A negative difference (the load
/// balancer restarted and its counters started again from zero) ends the segment: that window
/// is skipped, never drawn as a negative or huge rate. Each rate is placed at the end of its
/// window.
func rates(_ samples: [ClusterSample], start: Instant, value: (ClusterCounters) -> Int64) -> [[Point]] {
    var segments: [[Point]] = []
    var current: [Point] = []
    for (previous, next) in zip(samples, samples.dropFirst()) {
        let seconds = (next.at - previous.at).secondsValue
        let delta = value(next.counters) - value(previous.counters)
        guard seconds > 0 else { continue }
        if delta < 0 {
            if !current.isEmpty { segments.append(current) }
            current = []
            continue
        }
        current.append(Point(t: (next.at - start).secondsValue, v: Double(delta) / seconds))
    }
    if !current.isEmpty { segments.append(current) }
    return segments
}
