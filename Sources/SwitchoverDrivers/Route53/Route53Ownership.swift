import Foundation
import SwitchoverAWS
import SwitchoverCore

/// external-dns's ownership records: a record it manages has a TXT record holding
/// `heritage=external-dns,external-dns/owner=...`, and external-dns writes the record back to
/// what its Kubernetes annotations say within its sync interval (one minute by default). Weights
/// Switchover wrote would be undone under a running switchover, so preflight refuses unless the
/// policy says `ignoreExternalDNSOwnership: true`.
///
/// Where external-dns puts the TXT record (its TXT registry): the record's own name (before
/// v0.12, and still written beside the new form), `<type>-<name>` (v0.12 on: `cname-app...`),
/// or `<prefix><name>` with `--txt-prefix` (commonly `txt.`, `extdns-`, `_extdns.`,
/// `external-dns-`; a prefix may hold `%{record_type}`). A `--txt-suffix` goes on the first
/// label; the common `-txt` suffix is checked too. A prefix not in this list is not found:
/// README says so.
extension Route53Router {
    /// The TXT names external-dns's registry may use for the record, most common first.
    static func ownershipNames(recordName: String, recordType: String) -> [String] {
        let name = recordName.hasSuffix(".") ? recordName : recordName + "."
        let type = recordType.lowercased()
        let prefixes = ["", "\(type)-", "txt.", "txt-", "extdns.", "extdns-", "_extdns.", "external-dns-", "externaldns-",
                        "txt.\(type)-", "extdns-\(type)-", "_extdns.\(type)-"]
        var names = prefixes.map { $0 + name }
        if let dot = name.firstIndex(of: ".") {
            names.append(name[..<dot] + "-txt" + name[dot...])
        }
        var seen = Set<String>()
        return names.filter { seen.insert($0.lowercased()).inserted }
    }

    /// Refuses a record external-dns owns (unless the policy's override says otherwise); an
    /// authentication or credentials failure is named as such.
    public func preflight() async -> [String] {
        if spec.ignoreExternalDNSOwnership { return [] }
        do {
            for name in Self.ownershipNames(recordName: spec.recordName, recordType: spec.recordType) {
                let sets = try await route53Client.recordSets(hostedZoneId: spec.hostedZoneId, named: name, type: "TXT")
                guard let owner = sets.first(where: { $0.values.contains { $0.contains("heritage=external-dns") } }) else { continue }
                let ownerID = owner.values.lazy.compactMap { value in
                    value.split(whereSeparator: { $0 == "," || $0 == "\"" }).first { $0.hasPrefix("external-dns/owner=") }
                }.first.map { " (\($0))" } ?? ""
                return ["route53: \(spec.recordName) is managed by external-dns: its ownership TXT record \(owner.name)\(ownerID) says heritage=external-dns, "
                        + "so external-dns will overwrite the weights Switchover writes within its sync interval. "
                        + "Drive external-dns instead (the external-dns.alpha.kubernetes.io/aws-weight and set-identifier annotations on each cluster's Service or Ingress), "
                        + "or stop external-dns managing this record and set the policy's spec.loadBalancer.route53.ignoreExternalDNSOwnership: true"]
            }
        } catch let error as AWSError where error.kind == .authentication || error.kind == .credentials {
            return ["route53 preflight refused by AWS: \(error)"]
        } catch {
            return ["route53: could not look for external-dns's ownership records: \(error)"]
        }
        return []
    }
}
