import Foundation
import SwitchoverCore
import SwitchoverStore

/// Colours chosen to read on white and in print: FROM blue, TO green (the blue→green of the
/// field), verdicts in the usual traffic-light order with `error` purple so it is never
/// mistaken for `fail`.
enum Palette {
    static let from = "#2563eb"
    static let to = "#059669"
    /// One per service (several services: each one's share to TO, dashed).
    static let services = ["#9333ea", "#ea580c", "#0891b2", "#be123c", "#65a30d", "#a16207", "#4f46e5", "#db2777"]
    static func service(_ index: Int) -> String { services[index % services.count] }
    static func verdict(_ verdict: String?) -> String {
        switch verdict {
        case "pass": "#16a34a"
        case "fail": "#dc2626"
        case "inconclusive": "#d97706"
        case "error": "#7c3aed"
        default: "#6b7280"
        }
    }
    static func marker(_ kind: Marker.Kind) -> String {
        switch kind {
        case .gate: "#6b7280"
        case .pause, .resume: "#6b7280"
        case .rollback, .hardSignal: "#dc2626"
        case .rollbackVerified: "#b91c1c"
        case .promoted: "#111827"
        case .drain, .drained: "#0891b2"
        case .leader, .outage: "#9333ea"
        }
    }
}

/// The horizontal frame every chart shares: `width` pixels, the plotting area between the
/// margins, mapping seconds since the run started to x.
struct TimeFrame {
    var width: Double = 1100
    var left: Double = 64
    var right: Double = 24
    var t0: Double
    var t1: Double

    var plotWidth: Double { width - left - right }
    func x(_ t: Double) -> Double { left + (t - t0) / max(1e-9, t1 - t0) * plotWidth }
}

/// One horizontal band of a chart with its own value axis.
struct Panel {
    /// `data-panel` of its group, for tests and for people reading the source.
    var id: String
    var title: String
    var unit: String
    var top: Double
    var height: Double
    var maxValue: Double
    func y(_ v: Double) -> Double { top + height - min(max(v, 0), maxValue) / maxValue * height }
}

/// The at-most-this-many points drawn per series (see `downsample`).
let maxPointsPerSeries = 1_000

func path(_ series: Series, frame: TimeFrame, panel: Panel) -> String {
    var d = ""
    for segment in series.segments where !segment.isEmpty {
        var previous: Point?
        for point in segment {
            let x = num(frame.x(point.t)), y = num(panel.y(point.v))
            if let previous {
                if series.step { d += "H\(x)V\(y)" } else { d += "L\(x) \(y)" }
                _ = previous
            } else {
                d += "M\(x) \(y)"
            }
            previous = point
        }
        // A lone point still shows: a tiny horizontal tick.
        if segment.count == 1 { d += "h2" }
    }
    let dash = series.dashed ? " stroke-dasharray=\"6 4\"" : ""
    return "<path data-series=\"\(esc(series.name))\" d=\"\(d)\" fill=\"none\" stroke=\"\(series.color)\" stroke-width=\"2\" stroke-linejoin=\"round\"\(dash)><title>\(esc(series.label))</title></path>\n"
}

/// The value axis and grid of one panel, its title, and the time grid lines.
func panelFrame(_ panel: Panel, frame: TimeFrame, ticks: [Double]) -> String {
    var svg = "<g class=\"panel\" data-panel=\"\(panel.id)\" data-max=\"\(axisValue(panel.maxValue))\">\n"
    svg += "<text x=\"\(num(frame.left))\" y=\"\(num(panel.top - 8))\" class=\"ptitle\">\(esc(panel.title))</text>\n"
    // Short panels get fewer labels so they never touch.
    let intervals = panel.height >= 120 ? 5 : 3
    let step = panel.id == "weight" ? 25 : niceAxis(panel.maxValue, intervals: intervals).step
    var value = 0.0
    while value <= panel.maxValue + step * 1e-6 {
        let y = num(panel.y(value))
        svg += "<line x1=\"\(num(frame.left))\" x2=\"\(num(frame.width - frame.right))\" y1=\"\(y)\" y2=\"\(y)\" class=\"grid\"/>"
        let top = value + step > panel.maxValue + step * 1e-6
        svg += "<text x=\"\(num(frame.left - 6))\" y=\"\(y)\" class=\"yl\" dy=\"0.32em\">\(esc(axisValue(value)))\(top ? esc(panel.unit) : "")</text>\n"
        value += step
    }
    for tick in ticks {
        let x = num(frame.x(tick))
        svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(num(panel.top))\" y2=\"\(num(panel.top + panel.height))\" class=\"grid\"/>"
    }
    svg += "<rect x=\"\(num(frame.left))\" y=\"\(num(panel.top))\" width=\"\(num(frame.plotWidth))\" height=\"\(num(panel.height))\" class=\"box\"/>\n"
    svg += "</g>\n"
    return svg
}

func timeTicks(_ frame: TimeFrame, count: Int = 10) -> [Double] {
    let step = timeTickStep(span: frame.t1 - frame.t0, count: count)
    var ticks: [Double] = []
    var tick = ceil(frame.t0 / step) * step
    while tick <= frame.t1 + 1e-9 {
        ticks.append(tick)
        tick += step
    }
    return ticks
}

func timeAxis(_ frame: TimeFrame, ticks: [Double], y: Double) -> String {
    var svg = "<g class=\"xaxis\">"
    for tick in ticks {
        svg += "<text x=\"\(num(frame.x(tick)))\" y=\"\(num(y))\" class=\"xl\">\(esc(clock(tick)))</text>"
    }
    svg += "</g>\n"
    return svg
}

/// Places labels left to right on up to `rows` rows so that none overlaps the previous label of
/// its row; returns the row of each (or nil when it fits nowhere: the mark stays, unlabelled,
/// with its tooltip).
func labelRows(_ xs: [Double], widths: [Double], rows: Int, frame: TimeFrame) -> [Int?] {
    var taken: [[ClosedRange<Double>]] = Array(repeating: [], count: rows)
    return zip(xs, widths).map { x, width in
        // The same placement `label` uses: right of the line, or left of it at the right edge.
        let span = x + width > frame.width ? (x - width)...(x + 2) : (x - 2)...(x + width)
        for row in 0..<rows where !taken[row].contains(where: { $0.overlaps(span) }) {
            taken[row].append(span)
            return row
        }
        return nil
    }
}

/// Estimated width of a marker label at 11.5 px semibold (no text measuring without a browser).
func labelWidth(_ text: String) -> Double { Double(text.count) * 6.6 + 8 }

/// A marker's label right of its line, or left of it when it would run off the chart.
func label(_ text: String, x: Double, y: Double, color: String, frame: TimeFrame) -> String {
    let flip = x + labelWidth(text) > frame.width
    return "<text x=\"\(num(flip ? x - 3 : x + 3))\" y=\"\(num(y))\" class=\"ml\" fill=\"\(color)\"\(flip ? " text-anchor=\"end\"" : "")>\(esc(text))</text>"
}

/// The timeline: weight share of each cluster (step lines), request rate and 5xx rate of each
/// cluster, gate evaluations in their own lane, and vertical marks for pauses, promotion,
/// rollback and the drain.
func timelineChart(_ a: Analysis) -> String {
    let from = a.data.run.from, to = a.data.run.to
    // A little room after the last moment: a run ends on its last event (the promotion, the
    // rollback's read-back), and a mark on the plot's very edge is hard to see.
    let frame = TimeFrame(t0: 0, t1: a.span * 1.025)
    let colors = [from: Palette.from, to: Palette.to]
    let clusters = from == to ? [from] : [from, to]

    var weight: [Series] = []
    var rps: [Series] = []
    var errors: [Series] = []
    for cluster in clusters {
        let samples = a.data.samples[cluster] ?? []
        let color = colors[cluster] ?? Palette.from
        weight.append(downsample(Series(name: "weight:\(cluster)", label: "\(cluster) weight %", color: color, step: true,
                                         segments: [a.weightSeries(cluster)].filter { !$0.isEmpty }), limit: maxPointsPerSeries))
        rps.append(downsample(Series(name: "rps:\(cluster)", label: "\(cluster) requests/s", color: color,
                                     segments: rates(samples, start: a.start) { $0.responses }), limit: maxPointsPerSeries))
        errors.append(downsample(Series(name: "5xx:\(cluster)", label: "\(cluster) 5xx/s", color: color,
                                        segments: rates(samples, start: a.start) { $0.responses5xx }), limit: maxPointsPerSeries))
    }
    // Several services: each one's share to TO, so that waves show one after the other.
    for (index, service) in (a.data.policy?.services ?? []).enumerated() {
        let points = a.serviceWeightSeries(service)
        guard !points.isEmpty else { continue }
        weight.append(downsample(Series(name: "weight:service:\(service)", label: "\(service): \(to) weight %",
                                        color: Palette.service(index), dashed: true, step: true, segments: [points]),
                                 limit: maxPointsPerSeries))
    }

    // Event marks are labelled on up to three staggered rows above the charts; only the rows
    // in use take room.
    let markTop = 18.0
    let lines = a.markers.filter { $0.kind != .gate }
    let xs = lines.map { frame.x($0.t) }
    let rows = labelRows(xs, widths: lines.map { labelWidth($0.label) }, rows: 3, frame: frame)
    let rowsUsed = (rows.compactMap { $0 }.max() ?? -1) + 1
    let weightPanel = Panel(id: "weight", title: "Weight (% of traffic)", unit: "%", top: markTop + Double(rowsUsed) * 15 + 22, height: 150, maxValue: 100)
    let rpsPanel = Panel(id: "rps", title: "Requests per second", unit: "", top: weightPanel.top + weightPanel.height + 40, height: 120,
                         maxValue: niceCeiling(max(1, rps.map(\.maxValue).max() ?? 0)))
    let errorPanel = Panel(id: "5xx", title: "5xx responses per second", unit: "", top: rpsPanel.top + rpsPanel.height + 40, height: 90,
                           maxValue: niceAxis(max(1, errors.map(\.maxValue).max() ?? 0), intervals: 3).max)
    let gateLane = Panel(id: "gates", title: "Gate evaluations", unit: "", top: errorPanel.top + errorPanel.height + 40, height: 26, maxValue: 1)
    let axisY = gateLane.top + gateLane.height + 18
    let height = axisY + 10
    let ticks = timeTicks(frame)

    var svg = "<svg data-chart=\"timeline\" role=\"img\" aria-label=\"Timeline of the cutover\" viewBox=\"0 0 \(num(frame.width)) \(num(height))\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    for panel in [weightPanel, rpsPanel, errorPanel] { svg += panelFrame(panel, frame: frame, ticks: ticks) }
    svg += "<text x=\"\(num(frame.left))\" y=\"\(num(gateLane.top - 8))\" class=\"ptitle\">\(esc(gateLane.title))</text>\n"
    svg += "<rect x=\"\(num(frame.left))\" y=\"\(num(gateLane.top))\" width=\"\(num(frame.plotWidth))\" height=\"\(num(gateLane.height))\" class=\"box\"/>\n"

    // Paused stretches shaded grey behind everything: no bake ran there.
    var pausedAt: Double?
    for marker in a.markers {
        if marker.kind == .pause, pausedAt == nil { pausedAt = marker.t }
        if marker.kind == .resume || marker.kind == .rollback, let from = pausedAt {
            svg += pauseBand(from: from, to: marker.t, frame: frame, top: weightPanel.top, bottom: errorPanel.top + errorPanel.height)
            pausedAt = nil
        }
    }
    if let from = pausedAt {
        svg += pauseBand(from: from, to: a.span, frame: frame, top: weightPanel.top, bottom: errorPanel.top + errorPanel.height)
    }

    // Vertical marks, behind the lines, labelled on staggered rows at the top.
    svg += "<g data-markers=\"events\">\n"
    for (index, marker) in lines.enumerated() {
        let x = num(xs[index])
        let color = Palette.marker(marker.kind)
        let dash = marker.kind == .pause || marker.kind == .resume ? " stroke-dasharray=\"3 3\"" : ""
        svg += "<g data-marker=\"\(marker.kind.rawValue)\"><title>\(esc(clock(marker.t))) \(esc(marker.label)): \(esc(marker.detail))</title>"
        let labelY = markTop + Double(rows[index] ?? 0) * 15
        svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(num(labelY + 3))\" y2=\"\(num(errorPanel.top + errorPanel.height))\" stroke=\"\(color)\" stroke-width=\"1.5\"\(dash) opacity=\"0.8\"/>"
        if rows[index] != nil {
            svg += label(marker.label, x: xs[index], y: labelY, color: color, frame: frame)
        }
        svg += "</g>\n"
    }
    svg += "</g>\n"

    for series in weight { svg += path(series, frame: frame, panel: weightPanel) }
    for series in rps { svg += path(series, frame: frame, panel: rpsPanel) }
    for series in errors { svg += path(series, frame: frame, panel: errorPanel) }
    if errors.allSatisfy({ $0.maxValue == 0 }) && errors.contains(where: { $0.pointCount > 0 }) {
        // An empty panel reads as "no data"; say that the data is there and was all zero.
        svg += "<text x=\"\(num(frame.left + 8))\" y=\"\(num(errorPanel.top + 16))\" class=\"ml\" fill=\"#15803d\" data-note=\"no5xx\">no 5xx responses</text>\n"
    }

    // Gate evaluations: one dot each; with many, only the non-passing ones and a thinned set of
    // passes are drawn so a days-long run stays light (every fail is always drawn).
    let gates = a.markers.filter { $0.kind == .gate }
    let passes = gates.filter { $0.verdict == "pass" }
    let keepEvery = max(1, passes.count / maxPointsPerSeries)
    var passIndex = 0
    svg += "<g data-markers=\"gates\">\n"
    for marker in gates {
        if marker.verdict == "pass" {
            passIndex += 1
            if passIndex % keepEvery != 0 { continue }
        }
        let color = Palette.verdict(marker.verdict)
        let y = gateLane.top + gateLane.height / 2
        svg += "<circle data-verdict=\"\(esc(marker.verdict ?? ""))\" cx=\"\(num(frame.x(marker.t)))\" cy=\"\(num(y))\" r=\"\(marker.verdict == "pass" ? 4 : 5.5)\" fill=\"\(color)\" stroke=\"#fff\" stroke-width=\"1\"><title>\(esc(clock(marker.t))) \(esc(marker.detail))</title></circle>\n"
    }
    svg += "</g>\n"
    svg += timeAxis(frame, ticks: ticks, y: axisY)
    svg += "</svg>\n"
    return svg
}

func pauseBand(from: Double, to: Double, frame: TimeFrame, top: Double, bottom: Double) -> String {
    let x0 = frame.x(from), x1 = frame.x(to)
    return "<rect data-mark=\"paused\" x=\"\(num(x0))\" y=\"\(num(top))\" width=\"\(num(max(1, x1 - x0)))\" height=\"\(num(bottom - top))\" fill=\"#6b7280\" opacity=\"0.10\"><title>paused \(esc(clock(from))) → \(esc(clock(to)))</title></rect>\n"
}

/// FROM's open sessions from the drain's start (with a little context before it), the hold
/// window shaded and the end of the DNS TTL marked. Nil when the run never drained.
func drainChart(_ a: Analysis) -> String? {
    guard let drainStart = a.drainStart else { return nil }
    let from = a.data.run.from
    let samples = a.data.samples[from] ?? []
    let startT = a.rel(drainStart)
    let context = max(5, (a.span - startT) * 0.08)
    let t0 = max(0, startT - context)
    let points = samples.map { Point(t: a.rel($0.at), v: Double($0.counters.activeSessions)) }.filter { $0.t >= t0 }
    let series = downsample(Series(name: "sessions:\(from)", label: "\(from) active sessions", color: Palette.from,
                                   step: true, segments: [points].filter { !$0.isEmpty }), limit: maxPointsPerSeries)
    var t1 = max(a.span, startT + 1)
    if let ttl = a.dnsTTLEnds { t1 = max(t1, ttl) }
    let frame = TimeFrame(t0: t0, t1: t1)
    let panel = Panel(id: "sessions", title: "\(from): active sessions", unit: "", top: 40, height: 170,
                      // Sessions are whole numbers: an axis of at least 0…5 never labels 0.2 of one.
                      maxValue: niceCeiling(max(5, series.maxValue)))
    let axisY = panel.top + panel.height + 18
    let ticks = timeTicks(frame, count: 8)
    var svg = "<svg data-chart=\"drain\" role=\"img\" aria-label=\"Drain of \(esc(from))\" viewBox=\"0 0 \(num(frame.width)) \(num(axisY + 10))\" xmlns=\"http://www.w3.org/2000/svg\">\n"
    if let hold = a.holdWindow {
        let x0 = frame.x(max(hold.from, t0)), x1 = frame.x(min(hold.to, t1))
        svg += "<rect data-mark=\"hold\" x=\"\(num(x0))\" y=\"\(num(panel.top))\" width=\"\(num(max(1, x1 - x0)))\" height=\"\(num(panel.height))\" fill=\"#0891b2\" opacity=\"0.14\"><title>hold window: idle \(esc(clock(hold.from))) → \(esc(clock(hold.to)))\(hold.complete ? "" : " (still holding)")</title></rect>\n"
        svg += "<text x=\"\(num(x0 + 4))\" y=\"\(num(panel.top + 14))\" class=\"ml\" fill=\"#0e7490\">hold\(hold.complete ? "" : " (running)")</text>\n"
    }
    svg += panelFrame(panel, frame: frame, ticks: ticks)
    var marks: [(t: Double, label: String, color: String, kind: String)] = [(startT, "drain starts", "#0891b2", "drainStart")]
    if let ttl = a.dnsTTLEnds { marks.append((ttl, "DNS TTL ends", "#9333ea", "dnsTTL")) }
    if let drained = a.drainedAt { marks.append((a.rel(drained), "drained", "#059669", "drained")) }
    marks.sort { $0.t < $1.t }
    let rows = labelRows(marks.map { frame.x($0.t) }, widths: marks.map { labelWidth($0.label) }, rows: 2, frame: frame)
    for (index, mark) in marks.enumerated() {
        let x = num(frame.x(mark.t))
        let y = 14 + Double(rows[index] ?? 0) * 14
        svg += "<g data-mark=\"\(mark.kind)\"><line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(num(y + 3))\" y2=\"\(num(panel.top + panel.height))\" stroke=\"\(mark.color)\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>"
        if rows[index] != nil {
            svg += label(mark.label, x: frame.x(mark.t), y: y, color: mark.color, frame: frame)
        }
        svg += "</g>\n"
    }
    svg += path(series, frame: frame, panel: panel)
    svg += timeAxis(frame, ticks: ticks, y: axisY)
    svg += "</svg>\n"
    return svg
}
