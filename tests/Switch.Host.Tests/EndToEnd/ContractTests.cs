using System.Text.RegularExpressions;
using Switch.Contracts.V1;
using Switch.Engine.Business;
using Switch.Engine.Events;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Gateway;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;
using TransactionStatus = Switch.Contracts.V1.TransactionStatus;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>The institution contract as documented: the README's reject table against the code, query answers marked
/// as such, the message size limit, the recovery's progress records.</summary>
public sealed class ContractTests : WithDataDirectory
{
    [Fact]
    public void The_readmes_reject_table_lists_every_reject_code_with_its_grpc_status_and_message()
    {
        string readme = File.ReadAllText(FindReadme());
        Match table = Regex.Match(readme, "<!-- reject-codes:begin -->(.*?)<!-- reject-codes:end -->", RegexOptions.Singleline);
        Assert.True(table.Success, "README.md has no reject-codes table");
        var rows = new Dictionary<string, (string Status, string Field, string Words)>();
        foreach (string line in table.Groups[1].Value.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("| `", StringComparison.Ordinal)))
        {
            string[] cells = line.Trim('|').Split('|').Select(c => c.Trim()).ToArray();
            Assert.True(cells.Length == 4, $"a row of four cells: {line}");
            Assert.True(rows.TryAdd(cells[0].Trim('`'), (cells[1].Trim('`'), cells[2], cells[3])), $"listed twice: {cells[0]}");
        }
        var expected = Enum.GetValues<RejectCode>().Where(c => c != RejectCode.None).ToList();
        foreach (RejectCode code in expected)
        {
            string name = ResultMapping.RejectName(code);
            Assert.True(rows.TryGetValue(name, out var row), $"README.md: no row for {name} (add it to the reject-codes table)");
            Assert.True(ScreamingSnake(ResultMapping.StatusOf(code).ToString()) == row.Status,
                $"README.md: {name} is {ScreamingSnake(ResultMapping.StatusOf(code).ToString())}, the table says {row.Status}");
            Assert.True(ResultMapping.Describe(code) != code.ToString(), $"{name} has no words in ResultMapping.Describe");
            Assert.True(ResultMapping.Describe(code) == row.Words, $"README.md: {name}'s message is '{ResultMapping.Describe(code)}', the table says '{row.Words}'");
            Assert.False(string.IsNullOrWhiteSpace(row.Field), $"README.md: {name} names no field");
        }
        Assert.Equal(expected.Count, rows.Count);
        // The README's own example is in the table's terms.
        Assert.Contains($"`{ScreamingSnake(ResultMapping.StatusOf(RejectCode.DailyLimitExceeded).ToString())} \"{ResultMapping.RejectMessage(RejectCode.DailyLimitExceeded, RequestField.Amount)}\"`", readme);
    }

    [Fact]
    public async Task A_query_answer_says_so_on_the_stream_and_unary_and_an_execution_does_not()
    {
        await using RunningSwitch running = await RunningSwitch.StartAsync(TestConfig(Data), Data);
        await Limits.LimitedGateway.WarmUpAsync(running);
        using DuplexStreamingCall<TransferRequest, TransferResult> call = running.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 60_000));
        TransferRequest pay = Payment("Q-1", 500);
        pay.Kind = RequestKind.AgreementPayment;
        await call.RequestStream.WriteAsync(pay);
        await call.RequestStream.WriteAsync(new TransferRequest { Kind = RequestKind.Query, OrderNo = "Q-1" });
        await call.RequestStream.WriteAsync(new TransferRequest { Kind = RequestKind.Query, OrderNo = "Q-NONE" });
        await call.RequestStream.WriteAsync(pay); // a repeat: duplicate, not a query answer
        await call.RequestStream.CompleteAsync();
        var results = new List<TransferResult>();
        await foreach (TransferResult r in call.ResponseStream.ReadAllAsync()) results.Add(r);
        Assert.Equal(4, results.Count);

        TransferResult paid = results.Single(r => r.OrderNo == "Q-1" && !r.QueryAnswer && !r.Duplicate);
        Assert.Equal(TransactionStatus.Succeeded, paid.Status);
        TransferResult queried = results.Single(r => r.OrderNo == "Q-1" && r.QueryAnswer);
        Assert.Equal((RequestKind.AgreementPayment, false, paid.TransactionId), (queried.Kind, queried.Duplicate, queried.TransactionId));
        Assert.True(queried.Status is TransactionStatus.Processing or TransactionStatus.Succeeded, $"query answer {queried.Status}");
        TransferResult repeat = results.Single(r => r.OrderNo == "Q-1" && r.Duplicate);
        Assert.False(repeat.QueryAnswer);
        TransferResult missing = results.Single(r => r.OrderNo == "Q-NONE");
        Assert.Equal((TransactionStatus.Rejected, "ORDER_NOT_FOUND", true), (missing.Status, missing.RejectCode, missing.QueryAnswer));

        TransferResult unary = await running.Channel.UnaryAsync(InstitutionMethods.Query, new TransferRequest { OrderNo = "Q-1" }, As(AlipayKey));
        Assert.True(unary.QueryAnswer);
        Assert.False((await running.PayAsync(Payment("Q-2", 700))).QueryAnswer);
    }

    [Fact]
    public async Task The_message_size_limit_is_configured_and_a_larger_request_is_resource_exhausted_naming_both_sizes()
    {
        await using RunningSwitch running = await RunningSwitch.StartAsync(TestConfig(Data) with { MaxMessageBytes = 1024 }, Data);
        TransferRequest big = Payment(new string('x', 2000), 100);
        RpcException e = await Assert.ThrowsAsync<RpcException>(() => running.PayAsync(big));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Equal($"Received message larger than max ({big.CalculateSize()} vs. 1024)", e.Status.Detail);
        // Under the limit the request reaches the rules, which refuse the order number precisely.
        RpcException tooLong = await Assert.ThrowsAsync<RpcException>(() => running.PayAsync(Payment(new string('x', 900), 100)));
        Assert.StartsWith("FIELD_TOO_LONG: order_no", tooLong.Status.Detail);
        Assert.Equal(0, running.Host.Engine.Logic.Transactions.LastId); // neither reached a transaction

        foreach ((HostConfig bad, string field) in new[]
        {
            (TestConfig(Data) with { MaxMessageBytes = 100 }, "maxMessageBytes"),
            (TestConfig(Data) with { OutcomeFeed = new OutcomeFeedConfig { RetentionDays = 0 } }, "outcomeFeed.retentionDays"),
            (TestConfig(Data) with { OutcomeFeed = new OutcomeFeedConfig { SegmentRecords = 8 } }, "outcomeFeed.segmentRecords"),
            (TestConfig(Data) with { RecoveryLogIntervalMs = 0 }, "recoveryLogIntervalMs"),
            (TestConfig(Data) with { StallReportMs = StallWatchdog.MinStallMs - 1 }, "stallReportMs"),
            (TestConfig(Data) with { Snapshots = new SnapshotsConfig { EveryEvents = -1 } }, "snapshots.everyEvents"),
            (TestConfig(Data) with { Snapshots = new SnapshotsConfig { Keep = 101 } }, "snapshots.keep"),
            (TestConfig(Data) with { Snapshots = new SnapshotsConfig { JournalArchiveRetentionDays = -1 } }, "snapshots.journalArchiveRetentionDays"),
            (TestConfig(Data) with { Snapshots = new SnapshotsConfig { WriteMiBPerSecond = -1 } }, "snapshots.writeMiBPerSecond"),
        })
        {
            ConfigException refused = Assert.Throws<ConfigException>(bad.Validate);
            Assert.StartsWith($"configuration: {field}: ", refused.Message);
        }
    }

    [Fact]
    public async Task A_recovery_logs_its_progress_while_it_replays()
    {
        // No snapshot at the stop: the start replays the whole journal.
        HostConfig config = TestConfig(Data) with { Snapshots = new SnapshotsConfig { AtStop = false } };
        await using (RunningSwitch first = await RunningSwitch.StartAsync(config, Data))
        {
            // Enough journal for the replay to take several milliseconds, however fast the machine.
            using DuplexStreamingCall<TransferRequest, TransferResult> call = first.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 120_000));
            for (int i = 0; i < 3_000; i++)
            {
                TransferRequest r = Payment($"R-{i}", 100 + i % 100, account: $"A{i % 50}");
                r.Kind = RequestKind.AgreementPayment;
                await call.RequestStream.WriteAsync(r);
            }
            await call.RequestStream.CompleteAsync();
            int answered = 0;
            await foreach (TransferResult _ in call.ResponseStream.ReadAllAsync()) answered++;
            Assert.Equal(3_000, answered);
        }
        var output = new StringWriter();
        await using (SwitchHost host = await SwitchHost.StartAsync(config with { RecoveryLogIntervalMs = 1 }, new Log(output, output)))
        {
            Assert.True(host.Engine.Recovery.EventsReplayed >= 6_000);
        }
        string[] progress = output.ToString().Split('\n').Where(l => l.Contains("event=recovery_progress")).ToArray();
        Assert.NotEmpty(progress);
        Assert.All(progress, l => Assert.Matches(@"level=info event=recovery_progress .*events=\d+ records=\d+ position=\d+ elapsed_ms=\d+ events_per_second=\d+", l));
    }

    private static string ScreamingSnake(string pascal) => Regex.Replace(pascal, "(?<=[a-z])([A-Z])", "_$1").ToUpperInvariant();

    private static string FindReadme()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "README.md");
            if (File.Exists(candidate) && File.Exists(Path.Combine(d.FullName, "Switch.sln"))) return candidate;
        }
        throw new FileNotFoundException("README.md above the test's directory");
    }
}
