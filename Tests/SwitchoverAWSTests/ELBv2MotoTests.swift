import Foundation
import SwitchoverAWS
import SwitchoverTestKit
import Testing

/// ELBv2 through our client against a real moto; the VPC, subnets, ALB, target groups and
/// listener made, and the listener read back, with boto3.
@Suite struct ELBv2MotoTests {
    typealias Fixture = MotoServer.ALBListener

    /// An ALB in eu-west-1 whose HTTP listener forwards to `blue` (999) and `green` (0), with
    /// target group stickiness on for 300 s.
    static func alb(on moto: MotoServer, region: String = "eu-west-1") async throws -> Fixture {
        try await moto.makeALB(region: region, stickySeconds: 300)
    }

    /// The listener's forward weights as boto3 reads them, by target group ARN.
    static func botoWeights(_ moto: MotoServer, listener: String, region: String = "eu-west-1") async throws -> [String: Int] {
        let output = try await moto.python("""
            listener = client("elbv2", \(BotoPython.literal(region))).describe_listeners(ListenerArns=[\(BotoPython.literal(listener))])["Listeners"][0]
            groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
            print(json.dumps({g["TargetGroupArn"]: g["Weight"] for g in groups}))
            """)
        return try #require(try json(output) as? [String: Int])
    }

    @Test("ModifyListener moves the forward weights; DescribeListeners through ours and through boto3 read them back")
    func modifyAndDescribe() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let fixture = try await Self.alb(on: moto)
        let elb = ELBv2Client(client: awsClient(), region: "eu-west-1", endpoint: moto.endpoint)

        let before = try #require(try await elb.describeListeners(listenerArns: [fixture.listener]).first)
        #expect(before.arn == fixture.listener)
        #expect(before.port == 80 && before.protocol == "HTTP")
        let forward = try #require(before.defaultActions.first { $0.type == "forward" })
        #expect(forward.stickiness == ELBv2Stickiness(enabled: true, durationSeconds: 300))
        #expect(Dictionary(uniqueKeysWithValues: (before.forwardTargetGroups ?? []).map { ($0.arn, $0.weight ?? -1) })
            == [fixture.blue: 999, fixture.green: 0])

        let modified = try await elb.modifyListener(listenerArn: fixture.listener,
                                                    targetGroups: [(fixture.blue, 749), (fixture.green, 250)],
                                                    stickiness: forward.stickiness)
        #expect(Dictionary(uniqueKeysWithValues: (modified.forwardTargetGroups ?? []).map { ($0.arn, $0.weight ?? -1) })
            == [fixture.blue: 749, fixture.green: 250])

        let after = try #require(try await elb.describeListeners(listenerArns: [fixture.listener]).first)
        #expect(Dictionary(uniqueKeysWithValues: (after.forwardTargetGroups ?? []).map { ($0.arn, $0.weight ?? -1) })
            == [fixture.blue: 749, fixture.green: 250])
        #expect(after.defaultActions.first?.stickiness == ELBv2Stickiness(enabled: true, durationSeconds: 300))
        #expect(try await Self.botoWeights(moto, listener: fixture.listener) == [fixture.blue: 749, fixture.green: 250])
    }

    @Test("a weight moto would accept (1001) is refused before anything is sent")
    func weightOutOfRange() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let fixture = try await Self.alb(on: moto)
        let elb = ELBv2Client(client: awsClient(), region: "eu-west-1", endpoint: moto.endpoint)
        let error = await #expect(throws: AWSError.self) {
            _ = try await elb.modifyListener(listenerArn: fixture.listener, targetGroups: [(fixture.blue, 1001), (fixture.green, 0)])
        }
        #expect(error?.kind == .invalidRequest)
        #expect(error?.message.contains("1001") == true)
        #expect(error?.attempts == 0)
        #expect(try await Self.botoWeights(moto, listener: fixture.listener) == [fixture.blue: 999, fixture.green: 0])
    }

    @Test("an unknown listener is .notFound with moto's ListenerNotFound, naming the listener")
    func unknownListener() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stopInBackground() }
        let elb = ELBv2Client(client: awsClient(), region: "eu-west-1", endpoint: moto.endpoint)
        let arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/nope/0123456789abcdef/0123456789abcdef"
        let error = await #expect(throws: AWSError.self) { _ = try await elb.describeListeners(listenerArns: [arn]) }
        #expect(error?.kind == .notFound)
        #expect(error?.code == "ListenerNotFound")
        #expect(error?.httpStatus == 400)
        #expect(error.map { "\($0)" }?.contains(arn) == true)
    }
}
