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

/// The shortest span a drawn rate is measured over (see `rates`).
let rateWindow: Double = 1.0

/// Per-second rates from cumulative counters, each measured over a trailing window of at least
/// `window` seconds: the rate at sample i is (counter[i] − counter[j]) / (t[i] − t[j]) for the
/// newest earlier sample j at least `window` before it (the oldest of the segment while the
/// segment is younger than that). That is the time-weighted mean over the window, so uneven
/// sampling intervals are weighted by their length.
///
/// Why a window: the runtime samples every 250 ms, and integer counters read at slightly
/// jittered moments make a rate taken between neighbours swing by ±10 % (±30 req/s at 300 req/s)
/// although the load is steady; over 1 s the swing drops below the line's width. A sharp change
/// (a rollback, green starting to fail) stays visible: it shows as a ramp over one window, and
/// as every request is counted in exactly the windows that span it, a burst keeps its total.
/// When samples are farther apart than `window` (a slower sampling, downsampled old samples)
/// each rate is simply the one between neighbours.
///
/// A negative difference (the load balancer restarted and its counters started again from
/// zero) ends the segment: no window reaches across it, so it is never drawn as a negative or
/// huge rate. Each rate is placed at the end of its window (the moment it was known).
func rates(_ samples: [ClusterSample], start: Instant, window: Double = rateWindow,
           value: (ClusterCounters) -> Int64) -> [[Point]] {
    var segments: [[Point]] = []
    var current: [Point] = []
    // The samples of the current segment (no reset inside), and where its window begins.
    var segment: [ClusterSample] = []
    var back = 0
    for sample in samples {
        if let last = segment.last {
            if value(sample.counters) < value(last.counters) {
                if !current.isEmpty { segments.append(current) }
                current = []
                segment = [sample]
                back = 0
                continue
            }
            // Same instant twice: nothing to measure over.
            if sample.at <= last.at { continue }
        }
        segment.append(sample)
        guard segment.count >= 2 else { continue }
        // Move the window's start forward while the next sample still leaves `window` behind.
        while back + 1 < segment.count - 1, (sample.at - segment[back + 1].at).secondsValue >= window { back += 1 }
        let earlier = segment[back]
        let seconds = (sample.at - earlier.at).secondsValue
        guard seconds > 0 else { continue }
        let delta = value(sample.counters) - value(earlier.counters)
        current.append(Point(t: (sample.at - start).secondsValue, v: Double(delta) / seconds))
    }
    if !current.isEmpty { segments.append(current) }
    return segments
}
