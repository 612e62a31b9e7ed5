using Switch.BankSim;
using Switch.Clearing;
using Switch.Contracts.V1;
using Switch.Engine.Clearing;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Admin;
using Switch.Host.Configuration;
using Switch.Host.Tests.EndToEnd;

namespace Switch.Host.Tests.Admin;

/// <summary>
/// The per-member report over real sockets: bank 102 answers with declines and system errors, bank 103 stops answering
/// (its payments go UNKNOWN and are reversed). The report must equal what the institutions were told, survive a
/// restart unchanged, agree with a recount of the clearing records, and show a scoped key only its own rows.
/// </summary>
public sealed class MemberReportTests : WithDataDirectory
{
    private const string IcbcKey = "icbc-member-key";
    private const string TenpayOpsKey = "tenpay-member-key";

    private static HostConfig Config(string data, BankSimulatorServer icbc, BankSimulatorServer abc)
    {
        HostConfig config = RunningSwitch.TestConfig(data, rules: r => r with
        {
            BatchCloseTimes = [],
            BankTimeoutMs = 1_500,
            // A silent bank's debits are reversed at their first follow-up.
            ReverseAfterMs = 1,
            QueryBackoffInitialMs = 100,
            QueryBackoffMaxMs = 400,
        });
        config = RunningSwitch.WithBankAt(RunningSwitch.WithBankAt(config, 102, icbc.Address), 103, abc.Address);
        return config with
        {
            Operators =
            [
                .. config.Operators,
                new OperatorConfig { Id = "icbc", KeyHash = ApiKeyHash.Of(IcbcKey), Role = OperatorConfig.RoleRead, Scope = new OperatorScope { Bank = "102" } },
                new OperatorConfig { Id = "tenpay", KeyHash = ApiKeyHash.Of(TenpayOpsKey), Role = OperatorConfig.RoleRead, Scope = new OperatorScope { Institution = "TENPAY" } },
            ],
        };
    }

    [Fact]
    public async Task The_report_counts_what_members_were_told_survives_a_restart_matches_the_clearing_records_and_respects_scopes()
    {
        await using BankSimulatorServer icbc = await BankSimulatorServer.StartAsync(new BankSimulatorOptions
        {
            Latency = new LatencyModel.Uniform(1, 5), FailureRate = 0.3, SystemErrorRate = 0.1, Seed = 7, BankCodes = [102],
        });
        await using BankSimulatorServer abc = await BankSimulatorServer.StartAsync(new BankSimulatorOptions
        {
            Latency = new LatencyModel.Uniform(1, 5), NoAnswerRate = 1.0, Seed = 8, BankCodes = [103],
        });
        HostConfig config = Config(Data, icbc, abc);

        var orders = new List<(string Order, string Key, string Institution, string Bank)>();
        for (int i = 0; i < 30; i++) orders.Add(($"MA-{i}", RunningSwitch.AlipayKey, "ALIPAY", "102"));
        for (int i = 0; i < 15; i++) orders.Add(($"MT-{i}", RunningSwitch.TenpayKey, "TENPAY", "102"));
        for (int i = 0; i < 4; i++) orders.Add(($"MU-{i}", RunningSwitch.AlipayKey, "ALIPAY", "103"));

        MemberReportReply daily, hourly;
        await using (RunningSwitch sw = await RunningSwitch.StartAsync(config, Data))
        {
            using var admin = new AdminClient(sw);
            await admin.WaitAllTakeTrafficAsync("102");
            await admin.WaitAllTakeTrafficAsync("103");
            TransferResult[] answers = await Task.WhenAll(orders.Select((o, i) =>
                sw.PayAsync(RunningSwitch.Payment(o.Order, 1_000 + i, bank: o.Bank, account: $"62220202{i:D8}"), o.Key)));
            int unknown = answers.Count(a => a.Status == TransactionStatus.Unknown);
            Assert.Equal(4, unknown); // bank 103 never answers; bank 102 always does within the deadline
            Assert.All(answers, a => Assert.Equal("", a.RejectCode));

            // Every transaction final (the silent bank's reversed), as the institutions see them.
            var finals = new Dictionary<string, TransferResult>();
            await AdminClient.WaitUntilAsync(async () =>
            {
                foreach (var o in orders.Where(o => !finals.ContainsKey(o.Order)))
                {
                    TransferResult q = await sw.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = o.Order }, RunningSwitch.As(o.Key));
                    if (q.Status is TransactionStatus.Succeeded or TransactionStatus.Failed) finals[o.Order] = q;
                }
                return finals.Count == orders.Count;
            }, "every order final", 60_000);

            // Expected, from what the institutions were told.
            foreach (var group in orders.GroupBy(o => (o.Institution, o.Bank)))
            {
                List<TransferResult> told = group.Select(o => finals[o.Order]).ToList();
                MemberRow row = await ExpectRowAsync(admin, group.Key.Institution, group.Key.Bank, told.Count);
                Assert.Equal(told.Count, row.Requests);
                Assert.Equal(told.Count(t => t.Status == TransactionStatus.Succeeded), row.Approvals);
                Assert.Equal(told.Count(t => t.BankReason == "SYSTEM_ERROR"), row.SystemErrors);
                Assert.Equal(told.Count(t => t.BankReason == "REVERSED"), row.Timeouts);
                var business = told.Where(t => t.Status == TransactionStatus.Failed && t.BankReason is not ("SYSTEM_ERROR" or "REVERSED"))
                    .GroupBy(t => t.BankReason).ToDictionary(g => g.Key, g => (long)g.Count());
                Assert.Equal(business.Values.Sum(), row.BusinessDeclines);
                Assert.Equal(business, row.DeclinesByReason.ToDictionary(d => d.Reason, d => d.Count));
                int silent = group.Key.Bank == "103" ? group.Count() : 0;
                Assert.Equal(silent, row.WentUnknown);
                Assert.Equal(silent, row.UnknownResolved);
                Assert.Equal(silent, row.ReversalsSent);
                Assert.Equal(silent, row.ReversalsSucceeded);
                Assert.True(row.LatencyP50Us > 0 && row.LatencyP99Us >= row.LatencyP50Us, $"p50 {row.LatencyP50Us}, p99 {row.LatencyP99Us}");
            }
            Assert.True(finals.Values.Any(f => f.BankReason == "SYSTEM_ERROR") && finals.Values.Any(f => f.Status == TransactionStatus.Succeeded)
                && finals.Values.Any(f => f.BankReason is "INSUFFICIENT_FUNDS" or "LIMIT_EXCEEDED" or "ACCOUNT_CLOSED"), "the seeded bank gave each kind of outcome");

            daily = await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest(), AdminClient.ViewerKey);
            hourly = await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Hourly = true }, AdminClient.ViewerKey);
            Assert.Equal(daily.Rows.Sum(r => r.Requests), hourly.Rows.Sum(r => r.Requests));

            // The JSON API answers the same.
            (int status, string body, _) = await admin.PostJsonAsync("GetMemberReport", "{}", AdminClient.ViewerKey);
            Assert.Equal(200, status);
            Assert.Equal(daily, Google.Protobuf.JsonParser.Default.Parse<MemberReportReply>(body));

            await CheckScopesAsync(admin, daily);
        }

        // A restart rebuilds the same figures from the journal.
        await using (RunningSwitch sw = await RunningSwitch.StartAsync(config, Data))
        {
            using var admin = new AdminClient(sw);
            Assert.Equal(daily, await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Day = daily.Day }, AdminClient.ViewerKey));
            Assert.Equal(hourly, await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Day = daily.Day, Hourly = true }, AdminClient.ViewerKey));
        }

        // The clearing records of the same run, recounted: what they hold agrees with the report.
        List<BatchRecord> records = Directory.GetFiles(Path.Combine(Data, "clearing"), ClearingFiles.RecordsFile, SearchOption.AllDirectories)
            .SelectMany(file =>
            {
                byte[] bytes = File.ReadAllBytes(file);
                Assert.Equal(0, bytes.Length % BatchRecord.Bytes);
                return Enumerable.Range(0, bytes.Length / BatchRecord.Bytes).Select(i => BatchRecord.Read(bytes.AsSpan(i * BatchRecord.Bytes)));
            }).ToList();
        Assert.Equal(orders.Count, records.Count);
        string[] institutions = config.Switch.Institutions.Select(i => i.Code).ToArray();
        foreach (MemberRow row in hourly.Rows)
        {
            long hour = DateTimeOffset.Parse(row.PeriodStart).ToUnixTimeSeconds() / 3600;
            List<BatchRecord> mine = records.Where(r => institutions[r.InstitutionIndex] == row.Institution && r.BankCode.ToString("D3") == row.Bank
                && r.FinalUs / MemberStats.MicrosPerHour == hour).ToList();
            string Reason(BatchRecord r) => System.Text.Encoding.UTF8.GetString(r.Reason);
            Assert.Equal(mine.Count(r => r.Status == Engine.Events.TransactionStatus.Succeeded), row.Approvals);
            Assert.Equal(mine.Count(r => Reason(r) == "SYSTEM_ERROR"), row.SystemErrors);
            Assert.Equal(mine.Count(r => Reason(r) == "REVERSED"), row.Timeouts);
            Assert.Equal(mine.Count(r => Reason(r) == "REVERSED"), row.ReversalsSucceeded);
            Assert.Equal(mine.Count(r => r.Status == Engine.Events.TransactionStatus.Failed && Reason(r) is not ("SYSTEM_ERROR" or "REVERSED")), row.BusinessDeclines);
            long[] latency = new long[CellHistogram.Buckets];
            foreach (BatchRecord r in mine) latency[CellHistogram.Index(r.FinalUs - r.ReceivedUs)]++;
            Assert.Equal(CellHistogram.Percentile(latency, 0.50), row.LatencyP50Us);
            Assert.Equal(CellHistogram.Percentile(latency, 0.99), row.LatencyP99Us);
        }
        Assert.Equal(records.Count, hourly.Rows.Sum(r => r.Approvals + r.BusinessDeclines + r.Timeouts + r.SystemErrors + r.Unavailable));
    }

    [Fact]
    public async Task Requests_the_switch_refused_itself_count_under_their_institution_and_bank_dash_in_the_report_and_csv()
    {
        await using BankSimulatorServer icbc = await BankSimulatorServer.StartAsync(new BankSimulatorOptions
        {
            Latency = new LatencyModel.Uniform(1, 3), Seed = 9, BankCodes = [102],
        });
        await using BankSimulatorServer abc = await BankSimulatorServer.StartAsync(new BankSimulatorOptions
        {
            Latency = new LatencyModel.Uniform(1, 3), Seed = 10, BankCodes = [103],
        });
        HostConfig config = Config(Data, icbc, abc);
        async Task RefusedAsync(RunningSwitch sw, string order, long amountFen, string key, string code)
        {
            RpcException e = await Assert.ThrowsAsync<RpcException>(() => sw.PayAsync(RunningSwitch.Payment(order, amountFen, account: "6222020299990001"), key));
            Assert.StartsWith(code, e.Status.Detail);
        }

        MemberReportReply all;
        await using (RunningSwitch sw = await RunningSwitch.StartAsync(config, Data))
        {
            using var admin = new AdminClient(sw);
            await admin.WaitAllTakeTrafficAsync("102");
            Assert.Equal(TransactionStatus.Succeeded, (await sw.PayAsync(RunningSwitch.Payment("MR-OK", 1_000))).Status);
            await RefusedAsync(sw, "MR-BIG-1", 600_000_000, RunningSwitch.AlipayKey, "AMOUNT_OVER_LIMIT");
            await RefusedAsync(sw, "MR-BIG-2", 600_000_000, RunningSwitch.AlipayKey, "AMOUNT_OVER_LIMIT");
            await RefusedAsync(sw, "MR-DAY", 2_500_000, RunningSwitch.AlipayKey, "DAILY_LIMIT_EXCEEDED");
            await RefusedAsync(sw, "MR-TBIG", 600_000_000, RunningSwitch.TenpayKey, "AMOUNT_OVER_LIMIT");

            await AdminClient.WaitUntilAsync(async () =>
            {
                all = await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest(), AdminClient.ViewerKey);
                return all.Rows.Sum(r => r.Refused) == 4 && all.Rows.Sum(r => r.Approvals) == 1;
            }, "four refusals and one approval in the report");
            all = await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest(), AdminClient.ViewerKey);
            MemberRow alipay = Assert.Single(all.Rows, r => r.Institution == "ALIPAY" && r.Bank == "-");
            Assert.Equal(3, alipay.Refused);
            Assert.Equal(0, alipay.Requests);
            Assert.Equal([("AMOUNT_OVER_LIMIT", 2L), ("DAILY_LIMIT_EXCEEDED", 1L)], alipay.RefusedByCode.Select(c => (c.Reason, c.Count)));
            MemberRow tenpay = Assert.Single(all.Rows, r => r.Institution == "TENPAY" && r.Bank == "-");
            Assert.Equal([("AMOUNT_OVER_LIMIT", 1L)], tenpay.RefusedByCode.Select(c => (c.Reason, c.Count)));
            Assert.Equal((1L, 0L), (all.Rows.Single(r => r.Bank == "102").Approvals, all.Rows.Single(r => r.Bank == "102").Refused));
            Assert.Contains($",ALIPAY,-,0,0,0,,0,0,0,0,0,0,0,0,0,0,0,3,AMOUNT_OVER_LIMIT=2;DAILY_LIMIT_EXCEEDED=1\n", MemberReportCsv.Document(all.Rows));

            // Filters and scopes: "-" names the refusal rows; a bank's key sees none of them, an institution's its own.
            MemberReportReply dash = await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Bank = "-" }, AdminClient.ViewerKey);
            Assert.Equal(all.Rows.Where(r => r.Bank == "-"), dash.Rows);
            Assert.DoesNotContain((await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest(), IcbcKey)).Rows, r => r.Bank == "-");
            Assert.Equal([tenpay], (await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Bank = "-" }, TenpayOpsKey)).Rows);
        }

        // The refusals are outputs of the journal's replay: the same rows after a restart.
        await using (RunningSwitch sw = await RunningSwitch.StartAsync(config, Data))
        {
            using var admin = new AdminClient(sw);
            Assert.Equal(all, await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Day = all.Day }, AdminClient.ViewerKey));
        }
    }

    [Fact]
    public void A_day_ended_by_event_time_gets_its_csv_file_beside_the_clearing_files_equal_to_the_report()
    {
        Engine.Business.SwitchConfig config = HostConfig.EmbeddedDefault().Switch;
        var stats = new MemberStats();
        var reports = new MemberReports(stats, config);
        var files = new MemberReportFiles(stats, reports, Data);
        Directory.CreateDirectory(Path.Combine(Data, "clearing"));
        // 2026-03-01 23:00 in the switch's zone (UTC+8).
        long dayOneUs = DateTimeOffset.Parse("2026-03-01T23:00:00+08:00").ToUnixTimeMilliseconds() * 1000;
        Final(stats, 1, dayOneUs, Engine.Events.TransactionStatus.Succeeded, "");
        Final(stats, 2, dayOneUs + 1_000_000, Engine.Events.TransactionStatus.Failed, "INSUFFICIENT_FUNDS");
        Assert.Empty(files.WriteEndedDays()); // the day has not ended by event time

        Final(stats, 3, dayOneUs + 3_600_000_000L, Engine.Events.TransactionStatus.Succeeded, ""); // 2026-03-02 00:00
        string path = Assert.Single(files.WriteEndedDays());
        Assert.Equal(MemberReportFiles.PathOf(Data, "2026-03-01"), path);
        Assert.Equal(Path.Combine(Data, "clearing"), Path.GetDirectoryName(path));
        string text = File.ReadAllText(path);
        Assert.Equal(MemberReportCsv.Document(reports.Day(reports.DayStartHourOf(MemberStats.HourOf(dayOneUs)))), text);
        Assert.Equal([MemberReportCsv.Header, "2026-03-01T00:00:00+08:00,24,ALIPAY,102,0,1,1,INSUFFICIENT_FUNDS=1,0,0,0,0,0,0,0,0,0,640,640,0,", ""], text.Split('\n'));
        Assert.Empty(files.WriteEndedDays()); // written once
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void Hours_are_kept_31_days_by_event_time_then_dropped()
    {
        var stats = new MemberStats();
        long startUs = DateTimeOffset.Parse("2026-03-01T10:30:00Z").ToUnixTimeMilliseconds() * 1000;
        long first = MemberStats.HourOf(startUs);
        Final(stats, 1, startUs, Engine.Events.TransactionStatus.Succeeded, "");
        Final(stats, 2, startUs + (MemberStats.RetentionHours - 1) * MemberStats.MicrosPerHour, Engine.Events.TransactionStatus.Succeeded, "");
        Assert.Equal(first, stats.OldestHour);
        Assert.Single(stats.Report(first, 1, 1, (_, _) => true));

        Final(stats, 3, startUs + MemberStats.RetentionHours * MemberStats.MicrosPerHour, Engine.Events.TransactionStatus.Succeeded, "");
        Assert.Equal(first + MemberStats.RetentionHours - 1, stats.OldestHour);
        Assert.Empty(stats.Report(first, 1, 1, (_, _) => true));
        // A stamp older than what is kept changes nothing.
        Final(stats, 4, startUs, Engine.Events.TransactionStatus.Succeeded, "");
        Assert.Empty(stats.Report(first, 1, 1, (_, _) => true));
    }

    [Fact]
    public void Recording_outcomes_of_the_hour_and_of_an_earlier_kept_hour_allocates_nothing()
    {
        var stats = new MemberStats();
        long hourUs = DateTimeOffset.Parse("2026-03-01T10:00:00Z").ToUnixTimeMilliseconds() * 1000;
        Final(stats, 1, hourUs - 1_000, Engine.Events.TransactionStatus.Succeeded, ""); // the hour before: its cells exist
        Final(stats, 2, hourUs, Engine.Events.TransactionStatus.Failed, "INSUFFICIENT_FUNDS");
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (long id = 3; id < 10_003; id++)
        {
            // Mostly this hour; every tenth stamped just before it began, as outcomes near an hour's turn are.
            Final(stats, id, id % 10 == 0 ? hourUs - 500 : hourUs + id, Engine.Events.TransactionStatus.Succeeded, "");
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(MemberStats.HourOf(hourUs) - 1, stats.OldestHour);
    }

    private static void Final(MemberStats stats, long id, long finalUs, Engine.Events.TransactionStatus status, string reason)
    {
        var o = new Engine.Events.OutputEvent
        {
            Kind = Engine.Events.OutputKind.Feed, TransactionId = id, Status = status, InstitutionIndex = 0, BankIndex = 0, BankCode = 102,
            ReceivedUs = finalUs - 700, FinalUs = finalUs, TimestampUs = finalUs,
        };
        o.Reason.Set(reason);
        stats.Record(o);
    }

    private static async Task<MemberRow> ExpectRowAsync(AdminClient admin, string institution, string bank, int finals)
    {
        MemberRow? row = null;
        await AdminClient.WaitUntilAsync(async () =>
        {
            MemberReportReply reply = await admin.CallAsync(AdminMethods.GetMemberReport,
                new MemberReportRequest { Bank = bank, Institution = institution }, AdminClient.ViewerKey);
            row = reply.Rows.SingleOrDefault();
            return row is not null && row.Approvals + row.BusinessDeclines + row.Timeouts + row.SystemErrors + row.Unavailable == finals;
        }, $"{institution} × {bank}: {finals} final outcomes in the report");
        return row!;
    }

    private static async Task CheckScopesAsync(AdminClient admin, MemberReportReply all)
    {
        Assert.Contains(all.Rows, r => r.Bank == "103");
        Assert.Contains(all.Rows, r => r.Institution == "TENPAY");

        // A bank's key: its own rows only; another bank's named: PERMISSION_DENIED naming its scope.
        MemberReportReply icbc = await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest(), IcbcKey);
        Assert.Equal(all.Rows.Where(r => r.Bank == "102"), icbc.Rows);
        RpcException denied = await AdminClient.FailsAsync(() => admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Bank = "103" }, IcbcKey), StatusCode.PermissionDenied);
        Assert.Contains("scoped to bank 102", denied.Status.Detail);
        denied = await AdminClient.FailsAsync(() => admin.CallAsync(AdminMethods.ListBanks, new ListBanksRequest(), IcbcKey), StatusCode.PermissionDenied);
        Assert.Contains("scoped to bank 102", denied.Status.Detail);
        OperatorInfo who = await admin.CallAsync(AdminMethods.WhoAmI, new WhoAmIRequest(), IcbcKey);
        Assert.Equal("102", who.ScopeBank);

        // An institution's key, over the JSON API too.
        MemberReportReply tenpay = await admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest(), TenpayOpsKey);
        Assert.Equal(all.Rows.Where(r => r.Institution == "TENPAY"), tenpay.Rows);
        Assert.NotEmpty(tenpay.Rows);
        (int status, string body, _) = await admin.PostJsonAsync("GetMemberReport", "{\"institution\":\"ALIPAY\"}", TenpayOpsKey);
        Assert.Equal(403, status);
        Assert.Contains("scoped to institution TENPAY", body);
        (status, body, _) = await admin.PostJsonAsync("GetMemberReport", "{\"bank\":\"102\"}", TenpayOpsKey);
        Assert.Equal(200, status);
        Assert.Equal(tenpay, Google.Protobuf.JsonParser.Default.Parse<MemberReportReply>(body));

        // Malformed requests: precise.
        RpcException bad = await AdminClient.FailsAsync(() => admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Day = "2026-13-01" }, AdminClient.ViewerKey), StatusCode.InvalidArgument);
        Assert.StartsWith("day:", bad.Status.Detail);
        bad = await AdminClient.FailsAsync(() => admin.CallAsync(AdminMethods.GetMemberReport, new MemberReportRequest { Bank = "999" }, AdminClient.ViewerKey), StatusCode.InvalidArgument);
        Assert.StartsWith("bank:", bad.Status.Detail);
    }
}
