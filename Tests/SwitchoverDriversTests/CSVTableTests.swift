import Foundation
@testable import SwitchoverDrivers
import Testing

/// `show stat` CSV read by column name, with the header's reading kept between reads.
@Suite
struct CSVTableTests {
    static let answer = """
        # pxname,svname,qcur,scur,stot,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,rtime,status,
        app,blue-1,0,3,40,0,30,1,2,5,0,12,UP,
        app,green-1,0,0,7,0,7,0,0,0,0,4,DRAIN,

        """

    @Test("columns are found by name in any order, and a second header of another order is not confused with the first")
    func columnsByName() throws {
        let table = try CSVTable(showStat: Self.answer, driver: "haproxy", address: "test")
        let blue = try #require(table.row(proxy: "app", server: "blue-1"))
        #expect(blue.int("scur") == 3 && blue.int("stot") == 40 && blue.int("hrsp_5xx") == 5 && blue.int("hrsp_4xx") == 2)
        #expect(blue.string("status") == "UP")
        #expect(table.row(proxy: "app", server: "green-1")?.string("status") == "DRAIN")
        #expect(table.row(proxy: "app", server: "nope") == nil)

        // Another HAProxy version: the same columns elsewhere.
        let reordered = """
            # svname,pxname,status,rtime,hrsp_other,hrsp_5xx,hrsp_4xx,hrsp_3xx,hrsp_2xx,hrsp_1xx,stot,scur,
            blue-1,app,UP,12,0,5,2,1,30,0,40,3,

            """
        let other = try CSVTable(showStat: reordered, driver: "haproxy", address: "test")
        let same = try #require(other.row(proxy: "app", server: "blue-1"))
        #expect(same.int("scur") == 3 && same.int("stot") == 40 && same.int("hrsp_5xx") == 5 && same.string("status") == "UP")
        // And the first order again, read from the kept header.
        #expect(try CSVTable(showStat: Self.answer, driver: "haproxy", address: "test").row(proxy: "app", server: "blue-1")?.int("scur") == 3)
    }

    @Test("a header without a column the driver needs is an error naming it, every time it is read")
    func missingColumn() throws {
        let answer = "# pxname,svname,scur,stot,hrsp_2xx,rtime,status,\napp,blue-1,0,1,1,1,UP,\n"
        for _ in 0..<2 {
            #expect {
                _ = try CSVTable(showStat: answer, driver: "haproxy", address: "test")
            } throws: { error in
                (error as? LoadBalancerError)?.message.contains("no column 'hrsp_5xx'") == true
            }
        }
        #expect(throws: LoadBalancerError.self) { _ = try CSVTable(showStat: "Unknown command\n", driver: "haproxy", address: "test") }
    }
}
