using System.Diagnostics;
using Switch.BankSim;
using Switch.Contracts.V1;

namespace Switch.Host.Tests.BankSim;

public sealed class BankSimOptionsTests
{
    [Fact]
    public void Latency_models_parse_from_their_text_form()
    {
        Assert.Equal(new LatencyModel.Fixed(0), LatencyModel.Parse("0"));
        Assert.Equal(new LatencyModel.Fixed(5), LatencyModel.Parse("fixed:5"));
        Assert.Equal(new LatencyModel.Uniform(1, 10), LatencyModel.Parse("uniform:1-10"));
        Assert.Equal(new LatencyModel.LogNormal(5, 0.5), LatencyModel.Parse(" lognormal:5,0.5 "));
        Assert.Equal(new LatencyModel.Fixed(2.5), LatencyModel.Parse("FIXED:2.5"));
        Assert.Equal("lognormal:3,0.5", LatencyModel.Parse("lognormal:3,0.5").ToString());
        Assert.Equal("uniform:1-10", LatencyModel.Parse("uniform:1-10").ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("fast")]
    [InlineData("fixed")]
    [InlineData("fixed:")]
    [InlineData("fixed:-1")]
    [InlineData("fixed:1e9")]
    [InlineData("fixed:NaN")]
    [InlineData("uniform:10-1")]
    [InlineData("uniform:1")]
    [InlineData("lognormal:0,0.5")]
    [InlineData("lognormal:5,-1")]
    [InlineData("lognormal:5")]
    [InlineData("0:5")]
    public void Bad_latency_text_is_refused_with_a_message_naming_the_field(string text)
    {
        var e = Assert.Throws<FormatException>(() => LatencyModel.Parse(text));
        Assert.StartsWith("latency:", e.Message);
        Assert.Contains(text.Trim(), e.Message);
    }

    [Fact]
    public void Latency_samples_stay_within_their_model()
    {
        var random = new Random(7);
        var uniform = new LatencyModel.Uniform(1, 10);
        for (int i = 0; i < 1000; i++) Assert.InRange(uniform.SampleMs(random), 1, 10);

        var logNormal = new LatencyModel.LogNormal(5, 0.5);
        var samples = Enumerable.Range(0, 10_001).Select(_ => logNormal.SampleMs(random)).Order().ToArray();
        Assert.All(samples, s => Assert.InRange(s, 0, LatencyModel.MaxLatencyMs));
        Assert.InRange(samples[samples.Length / 2], 4.5, 5.5); // The median is the median.
    }

    public static TheoryData<BankSimulatorOptions, string> BadOptions => new()
    {
        { new BankSimulatorOptions { FailureRate = 1.5 }, "FailureRate" },
        { new BankSimulatorOptions { FailureRate = double.NaN }, "FailureRate" },
        { new BankSimulatorOptions { NoAnswerRate = -0.1 }, "NoAnswerRate" },
        { new BankSimulatorOptions { SystemErrorRate = 2 }, "SystemErrorRate" },
        { new BankSimulatorOptions { CapacityTps = -1 }, "CapacityTps" },
        { new BankSimulatorOptions { Port = 70_000 }, "Port" },
        { new BankSimulatorOptions { Latency = new LatencyModel.Uniform(5, 1) }, "Latency" },
        { new BankSimulatorOptions { BankCodes = [102, 1000] }, "BankCodes" },
        { new BankSimulatorOptions { MaxPendingPerStream = 0 }, "MaxPendingPerStream" },
        { new BankSimulatorOptions { MaxQueueingDelayMs = -1 }, "MaxQueueingDelayMs" },
        { new BankSimulatorOptions { MaxSilenceMs = 0 }, "MaxSilenceMs" },
        { new BankSimulatorOptions { MaxLedgerEntries = 0 }, "MaxLedgerEntries" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void Invalid_options_name_the_field(BankSimulatorOptions options, string field)
    {
        var e = Assert.Throws<BankOptionException>(() => options.Validate());
        Assert.Equal(field, e.ParamName);
        Assert.StartsWith(field, e.Message);
    }

    [Fact]
    public async Task The_server_refuses_to_start_with_invalid_options()
    {
        var e = await Assert.ThrowsAsync<BankOptionException>(() => BankSimulatorServer.StartAsync(new BankSimulatorOptions { FailureRate = 2 }));
        Assert.Equal("FailureRate", e.ParamName);
    }

    [Fact]
    public void The_command_line_parses_every_option()
    {
        var result = CommandLine.Parse(["--port", "7101", "--latency", "lognormal:3,0.5", "--failure-rate", "0.02", "--no-answer-rate=0.001",
            "--system-error-rate", "0.25", "--capacity-tps", "50000", "--seed", "7", "--bank-codes", "102,308", "--max-pending-per-stream", "1024", "--max-queueing-delay-ms", "50"]);
        Assert.Null(result.Error);
        var options = Assert.IsType<BankSimulatorOptions>(result.Options);
        Assert.Equal(7101, options.Port);
        Assert.Equal(new LatencyModel.LogNormal(3, 0.5), options.Latency);
        Assert.Equal((0.02, 0.001, 0.25, 50_000, 7), (options.FailureRate, options.NoAnswerRate, options.SystemErrorRate, options.CapacityTps, options.Seed));
        Assert.Equal([102, 308], options.BankCodes);
        Assert.Equal((1024, 50), (options.MaxPendingPerStream, options.MaxQueueingDelayMs));

        Assert.True(CommandLine.Parse(["--help"]).Help);
        Assert.Equal(new BankSimulatorOptions().ToString(), CommandLine.Parse([]).Options!.ToString());
    }

    [Theory]
    [InlineData("--failure-rate", "--failure-rate", "2")]
    [InlineData("--failure-rate", "--failure-rate", "abc")]
    [InlineData("--no-answer-rate", "--no-answer-rate", "-1")]
    [InlineData("--system-error-rate", "--system-error-rate", "1.5")]
    [InlineData("--latency", "--latency", "uniform:9-1")]
    [InlineData("--capacity-tps", "--capacity-tps", "-5")]
    [InlineData("--port", "--port", "http")]
    [InlineData("--port", "--port", "99999")]
    [InlineData("--seed", "--seed")]
    [InlineData("--bank-codes", "--bank-codes", "102,x")]
    [InlineData("--max-pending-per-stream", "--max-pending-per-stream", "0")]
    [InlineData("--speed", "--speed", "1")]
    [InlineData("stray", "stray")]
    public void Command_line_errors_name_the_option(string named, params string[] args)
    {
        var result = CommandLine.Parse(args);
        Assert.Null(result.Options);
        Assert.NotNull(result.Error);
        Assert.Contains(named, result.Error);
    }

    [Fact]
    public void Capacity_adds_queueing_delay_up_to_twice_the_capacity_then_refuses()
    {
        var meter = new CapacityMeter(capacityTps: 10, maxQueueingDelayMs: 100);
        long now = Stopwatch.Frequency * 1000; // Any fixed instant: one window.
        var delays = new List<long>();
        for (int i = 0; i < 20; i++)
        {
            Assert.True(meter.TryAdmit(now, out long delay));
            delays.Add(delay);
        }
        Assert.All(delays.Take(10), d => Assert.Equal(0, d));
        for (int i = 10; i < 20; i++) Assert.True(delays[i] > delays[i - 1], "the delay grows with the overload");
        Assert.Equal(100 * Stopwatch.Frequency / 1000, delays[19]);
        Assert.False(meter.TryAdmit(now, out _));

        // A second later the window has moved on.
        Assert.True(meter.TryAdmit(now + Stopwatch.Frequency * 2, out long later));
        Assert.Equal(0, later);

        Assert.True(new CapacityMeter(0, 100).TryAdmit(now, out long unlimited));
        Assert.Equal(0, unlimited);
    }

    [Fact]
    public void The_ledger_executes_an_id_once_and_bars_after_reversal()
    {
        var ledger = new BankLedger(maxEntries: 2);
        var now = DateTime.UtcNow;
        Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(1, BankOperation.Debit, 100, "A", null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Repeat, ledger.Execute(1, BankOperation.Debit, 100, "A", BankReasons.AccountClosed, now, out var repeat));
        Assert.Equal(BankOutcome.Succeeded, repeat.Outcome);
        Assert.Equal(BankLedger.ExecuteKind.Mismatch, ledger.Execute(1, BankOperation.Credit, 100, "A", null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(2, BankOperation.Credit, 300, "B", null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Full, ledger.Execute(3, BankOperation.Credit, 300, "B", null, now, out _));
        Assert.Equal(200, ledger.NetFen());

        Assert.True(ledger.Reverse(1, now));
        Assert.Equal(300, ledger.NetFen());
        Assert.True(ledger.Reverse(9, now)); // Bars get headroom past the limit.
        Assert.Equal(BankLedger.ExecuteKind.Barred, ledger.Execute(9, BankOperation.Debit, 100, "A", null, now, out _));
        Assert.Equal([1L, 2L, 9L], ledger.Snapshot().Select(e => e.TransactionId));
        Assert.Equal((2L, 1L), (ledger.Counts.Executed, ledger.Counts.Reversals - 1));
    }

    [Fact]
    public void The_ledger_keeps_every_account_and_reason_exactly_whatever_their_length_or_script()
    {
        var ledger = new BankLedger();
        var now = new DateTime(2026, 11, 30, 8, 0, 0, DateTimeKind.Utc);
        string inline32 = new('7', 32), long33 = new('8', 33), chinese = "账户-6222";
        Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(1, BankOperation.Debit, 100, inline32, null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(2, BankOperation.Debit, 100, long33, BankReasons.InsufficientFunds, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(3, BankOperation.Credit, 100, chinese, BankReasons.LimitExceeded, now, out _));

        // A repeat matches only the very same account: one character more, less or different is a mismatch.
        Assert.Equal(BankLedger.ExecuteKind.Repeat, ledger.Execute(1, BankOperation.Debit, 100, inline32, null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Mismatch, ledger.Execute(1, BankOperation.Debit, 100, inline32 + "7", null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Mismatch, ledger.Execute(1, BankOperation.Debit, 100, inline32[..31], null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Mismatch, ledger.Execute(1, BankOperation.Debit, 100, inline32[..31] + "6", null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Repeat, ledger.Execute(2, BankOperation.Debit, 100, long33, null, now, out var repeat));
        Assert.Equal(BankOutcome.Failed, repeat.Outcome);
        Assert.Equal(BankLedger.ExecuteKind.Mismatch, ledger.Execute(2, BankOperation.Debit, 100, long33[..32], null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Repeat, ledger.Execute(3, BankOperation.Credit, 100, chinese, null, now, out _));
        Assert.Equal(BankLedger.ExecuteKind.Mismatch, ledger.Execute(3, BankOperation.Credit, 100, "账户-6223", null, now, out _));

        Assert.Equal(
            [(1L, inline32, "", BankOutcome.Succeeded), (2L, long33, BankReasons.InsufficientFunds, BankOutcome.Failed), (3L, chinese, BankReasons.LimitExceeded, BankOutcome.Failed)],
            ledger.Snapshot().Select(e => (e.TransactionId, e.Account, e.Reason, e.Outcome)));
        Assert.True(ledger.TryGet(3, out BankLedgerEntry third));
        Assert.Equal((chinese, now, 100L, BankOperation.Credit), (third.Account, third.ExecutedAtUtc, third.AmountFen, third.Operation));
        Assert.Throws<ArgumentException>(() => ledger.Execute(4, BankOperation.Debit, 100, "A", "MADE_UP_REASON", now, out _));
        Assert.Equal(3, ledger.Count);
    }

    [Fact]
    public void The_ledger_keeps_ids_apart_that_share_a_stripe_key_and_answers_each_as_executed()
    {
        // Ids 1,024 apart fall in neighbouring stripes under the same key there; 65,536 apart, in one stripe under
        // neighbouring keys; and ids on either side of a block's edge. Each must stay its own entry.
        var ledger = new BankLedger();
        var now = new DateTime(2026, 12, 6, 8, 0, 0, DateTimeKind.Utc);
        long[] ids = [1, 1_023, 1_024, 1_025, 2_048, 65_536, 65_537, 1L << 40, (1L << 40) + 1_024, long.MaxValue];
        for (int i = 0; i < ids.Length; i++)
        {
            Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(ids[i], i % 2 == 0 ? BankOperation.Debit : BankOperation.Credit, 100 + i, "A" + i, null, now, out _));
        }
        Assert.True(ledger.Reverse(1_024, now));
        Assert.True(ledger.Reverse(3_072, now)); // Unknown: barred, leaving 1,024 and 2,048 as they are.
        for (int i = 0; i < ids.Length; i++)
        {
            Assert.True(ledger.TryGet(ids[i], out BankLedgerEntry entry));
            Assert.Equal((ids[i], 100L + i, "A" + i, ids[i] == 1_024), (entry.TransactionId, entry.AmountFen, entry.Account, entry.Reversed));
            Assert.Equal(BankLedger.ExecuteKind.Repeat, ledger.Execute(ids[i], entry.Operation, 100 + i, "A" + i, null, now, out _));
        }
        Assert.False(ledger.TryGet(4_096, out _));
        Assert.Equal(BankLedger.ExecuteKind.Barred, ledger.Execute(3_072, BankOperation.Debit, 1, "B", null, now, out _));
        Assert.Equal([.. ids.Append(3_072).Order()], ledger.Snapshot().Select(e => e.TransactionId));
        Assert.Equal(ids.Length + 1, ledger.Count);
    }

    [Fact]
    public void The_ledger_grows_without_copying_what_it_holds()
    {
        // Ids in order, as the switch numbers them. Entries are 72 bytes; a table that doubled and rehashed allocated
        // about three times that per entry (each array twice the last, the old ones garbage), in large-object arrays
        // that every stripe of every bank allocated within the same moment: a stall of seconds at 180,000/s. Pages on
        // the pinned-object heap still allocated the 72 there; native slabs leave a page header per 64 entries.
        const int Entries = 1_000_000;
        var ledger = new BankLedger(maxEntries: Entries);
        var now = new DateTime(2026, 12, 6, 8, 0, 0, DateTimeKind.Utc);
        Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(1, BankOperation.Debit, 100, "A", null, now, out _)); // JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (long id = 2; id <= Entries; id++)
        {
            if (ledger.Execute(id, BankOperation.Debit, 100, "A", null, now, out _) != BankLedger.ExecuteKind.Recorded) Assert.Fail($"id {id}");
        }
        long perEntryBytes = (GC.GetAllocatedBytesForCurrentThread() - before) / (Entries - 1);
        Assert.InRange(perEntryBytes, 0, 4);
        Assert.Equal(BankLedger.ExecuteKind.Full, ledger.Execute(Entries + 1, BankOperation.Debit, 100, "A", null, now, out _));
        Assert.True(ledger.TryGet(Entries / 2, out BankLedgerEntry middle));
        Assert.Equal((Entries / 2L, 100L), (middle.TransactionId, middle.AmountFen));
        Assert.Equal(-100L * Entries, ledger.NetFen());
    }
    [Fact]
    public void A_ledger_fed_ids_so_sparse_that_each_takes_a_page_refuses_past_its_page_limit_and_keeps_what_it_has()
    {
        // 16,384 entries (20,481 with the bars' headroom): 4 x 321 pages + 64 = 1,348 pages at most. Ids 2^16 apart share
        // a stripe and each takes a page of its own (64 entries' room for one).
        var ledger = new BankLedger(maxEntries: 16_384);
        var now = new DateTime(2026, 12, 6, 8, 0, 0, DateTimeKind.Utc);
        const int MaxPages = 1_348;
        for (long i = 0; i < MaxPages; i++)
        {
            Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(i << 16, BankOperation.Credit, 100, "A", null, now, out _));
        }
        long sparse = (long)MaxPages << 16;
        Assert.Equal(BankLedger.ExecuteKind.Full, ledger.Execute(sparse, BankOperation.Credit, 100, "A", null, now, out _));
        Assert.False(ledger.Reverse(sparse, now)); // a bar needs a page too
        Assert.False(ledger.TryGet(sparse, out _));
        Assert.Equal(MaxPages, ledger.Count);

        // Pages made take their neighbours, and what was recorded still answers.
        Assert.Equal(BankLedger.ExecuteKind.Recorded, ledger.Execute(1, BankOperation.Debit, 100, "A", null, now, out _));
        Assert.True(ledger.Reverse(2, now));
        Assert.Equal(BankLedger.ExecuteKind.Repeat, ledger.Execute(7L << 16, BankOperation.Credit, 100, "A", null, now, out _));
        Assert.Equal(MaxPages + 2, ledger.Count);
        Assert.Equal(100L * MaxPages - 100, ledger.NetFen());
    }
}
