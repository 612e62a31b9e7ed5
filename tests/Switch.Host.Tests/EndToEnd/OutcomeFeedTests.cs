using System.Runtime;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Host.Configuration;
using Switch.Host.Gateway;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;
using TransactionStatus = Switch.Contracts.V1.TransactionStatus;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>The outcome feed on disk: re-read from any feed number over the wire, across restarts and torn files,
/// until its retention has passed; then a precise OUT_OF_RANGE naming the oldest feed number kept.</summary>
public sealed class OutcomeFeedTests : WithDataDirectory
{
    [Fact]
    public async Task More_outcomes_than_the_old_in_memory_window_are_re_read_from_feed_number_0_before_and_after_restarts()
    {
        const int payments = 70_000; // past the 65,536 the feed used to keep
        HostConfig config = TestConfig(Data) with { OutcomeFeed = new OutcomeFeedConfig { SegmentRecords = 16_384 } };
        List<TransferResult> first;
        await using (RunningSwitch running = await RunningSwitch.StartAsync(config, Data))
        {
            await PayOnAStreamAsync(running, payments);
            first = await ReadFeedAsync(running, afterFeedNo: 0, payments);
            Assert.Equal(Enumerable.Range(1, payments).Select(i => (long)i), first.Select(o => o.FeedNo));
            Assert.All(first, o => Assert.Equal(TransactionStatus.Succeeded, o.Status));
            Assert.Equal(payments, first.Select(o => o.OrderNo).Distinct().Count());
        }
        // 70,000 records of 192 bytes in segments of 16,384: five files, the last one partly full.
        string feedDir = Path.Combine(Data, "feeds", "0000");
        string[] files = Directory.GetFiles(feedDir).Order().ToArray();
        Assert.Equal(5, files.Length);
        Assert.Equal((70_000 - 4 * 16_384) * FeedRecord.Bytes, new FileInfo(files[^1]).Length);

        await using (RunningSwitch again = await RunningSwitch.StartAsync(config, Data))
        {
            Assert.Equal(payments, again.Host.Feeds.For(0).FoundAtOpen); // kept, not rewritten
            List<TransferResult> second = await ReadFeedAsync(again, afterFeedNo: 0, payments);
            Assert.Equal(first, second);
            // Any feed number, across a segment boundary.
            List<TransferResult> middle = await ReadFeedAsync(again, afterFeedNo: 16_380, 10);
            Assert.Equal(first.Skip(16_380).Take(10), middle);
        }

        // A crash after a torn write: the last segment cut mid-record, and a whole record of garbage before it.
        long length = new FileInfo(files[^1]).Length;
        using (var f = new FileStream(files[^1], FileMode.Open, FileAccess.Write))
        {
            f.SetLength(length - FeedRecord.Bytes / 2);
            f.Seek(length - 3 * FeedRecord.Bytes, SeekOrigin.Begin);
            f.Write(Enumerable.Repeat((byte)0xA5, FeedRecord.Bytes).ToArray());
        }
        await using (RunningSwitch repaired = await RunningSwitch.StartAsync(config, Data))
        {
            Assert.Equal(payments - 3, repaired.Host.Feeds.For(0).FoundAtOpen); // cut back to the last intact record
            Assert.Equal(first, await ReadFeedAsync(repaired, afterFeedNo: 0, payments)); // caught up by the replay
            TransferResult next = await repaired.PayAsync(Payment("AFTER-REPAIR", 100));
            Assert.Equal(payments + 1, next.FeedNo);
            Assert.Equal("AFTER-REPAIR", (await ReadFeedAsync(repaired, afterFeedNo: payments, 1))[0].OrderNo);
        }
    }

    [Fact]
    public async Task Feed_files_of_another_journal_or_of_a_lost_one_are_refused_at_start()
    {
        string other = Data + "-other";
        try
        {
            await using (RunningSwitch a = await RunningSwitch.StartAsync(TestConfig(Data), Data))
            {
                for (int i = 0; i < 5; i++) await a.PayAsync(Payment($"A-{i}", 100 + i));
            }
            await using (RunningSwitch b = await RunningSwitch.StartAsync(TestConfig(other), other))
            {
                for (int i = 0; i < 5; i++) await b.PayAsync(Payment($"B-{i}", 200 + i));
            }
            // B's feeds beside A's journal: the fifth outcome differs, so the start stops, naming what to delete.
            Directory.Delete(Path.Combine(Data, "feeds"), recursive: true);
            CopyDirectory(Path.Combine(other, "feeds"), Path.Combine(Data, "feeds"));
            InvalidDataException refused = await Assert.ThrowsAsync<InvalidDataException>(() => RunningSwitch.StartAsync(TestConfig(Data), Data));
            Assert.Contains($"the files in {Path.Combine(Data, "feeds", "0000")} disagree with the journal at feed number 5", refused.Message);

            // The journal lost beside its feeds (and its clearing records): refused, never a new journal that would hand
            // out transaction ids and feed numbers again from 1.
            Directory.Delete(Path.Combine(Data, "feeds"), recursive: true);
            CopyDirectory(Path.Combine(other, "feeds"), Path.Combine(Data, "feeds"));
            Directory.Delete(Path.Combine(Data, "journal"), recursive: true);
            Directory.Delete(Path.Combine(Data, "archive"), recursive: true);
            Directory.Delete(Path.Combine(Data, "clearing"), recursive: true);
            refused = await Assert.ThrowsAsync<InvalidDataException>(() => RunningSwitch.StartAsync(TestConfig(Data), Data));
            Assert.Contains($"outcome feed: {Path.Combine(Data, "feeds", "0000")} holds outcomes up to feed number 5 but the journal has none", refused.Message);

            // An operator who means to start afresh deletes the feeds too: the feed starts again at 1.
            Directory.Delete(Path.Combine(Data, "feeds"), recursive: true);
            await using RunningSwitch fresh = await RunningSwitch.StartAsync(TestConfig(Data), Data);
            Assert.Equal(0, fresh.Host.Feeds.For(0).LastFeedNo);
            Assert.Equal(1, (await fresh.PayAsync(Payment("FRESH", 100))).FeedNo);
            Assert.Equal("FRESH", (await ReadFeedAsync(fresh, afterFeedNo: 0, 1))[0].OrderNo);
        }
        finally
        {
            try { Directory.Delete(other, recursive: true); } catch (IOException) { }
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (string dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(dir.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories)) File.Copy(file, file.Replace(from, to));
    }

    [Fact]
    public async Task Past_its_retention_the_feed_answers_out_of_range_naming_the_oldest_feed_number_kept()
    {
        var clock = new SkippingClock(); // runs with real time (bank deadlines are sent on it) and can skip days
        HostConfig config = TestConfig(Data) with
        {
            OutcomeFeed = new OutcomeFeedConfig { RetentionDays = 1, SegmentRecords = 16 },
            Clock = clock,
        };
        await using RunningSwitch running = await RunningSwitch.StartAsync(config, Data);
        for (int i = 0; i < 40; i++) await running.PayAsync(Payment($"OLD-{i}", 100 + i, account: $"A{i}"));
        clock.Advance(2 * 86_400_000_000L); // two days later
        for (int i = 0; i < 30; i++) await running.PayAsync(Payment($"NEW-{i}", 100 + i, account: $"A{i}"));

        // Segments 1-16 and 17-32 held only outcomes two days old: deleted. 33-48 holds new ones too: kept.
        OutcomeFeed feed = running.Host.Feeds.For(0);
        Assert.Equal(33, feed.OldestFeedNo);
        Assert.Equal(3, Directory.GetFiles(Path.Combine(Data, "feeds", "0000")).Length);
        foreach (long after in new long[] { 0, 31 })
        {
            RpcException e = await Assert.ThrowsAsync<RpcException>(() => ReadFeedAsync(running, after, 1));
            Assert.Equal(StatusCode.OutOfRange, e.StatusCode);
            Assert.Equal($"after_feed_no: feed number {after + 1} is no longer kept (outcomes are kept 1 days); " +
                "the oldest kept is 33: resume with after_feed_no 32 and query older orders", e.Status.Detail);
        }
        List<TransferResult> kept = await ReadFeedAsync(running, afterFeedNo: 32, 38);
        Assert.Equal(Enumerable.Range(33, 38).Select(i => (long)i), kept.Select(o => o.FeedNo));
        Assert.Equal(new[] { "OLD-32", "OLD-39", "NEW-0", "NEW-29" }, new[] { kept[0], kept[7], kept[8], kept[^1] }.Select(o => o.OrderNo));
    }

    [Fact]
    public void A_feed_record_goes_on_the_wire_as_the_same_bytes_as_the_result_message()
    {
        var cases = new List<ResultFields>();
        var succeeded = new ResultFields
        {
            FeedNo = 1, TransactionId = 77, AmountFen = 123_456, FeeFen = 74, ReceivedUs = 1_700_000_000_000_001, FinalUs = 1_700_000_000_002_001,
            RequestType = RequestType.AgreementPayment, Status = Switch.Engine.Events.TransactionStatus.Succeeded,
        };
        succeeded.OrderNo.Set("ORDER-1");
        succeeded.Echo.Set("流水=A,64字节以内");
        cases.Add(succeeded);
        ResultFields failed = succeeded;
        failed.FeedNo = long.MaxValue;
        failed.Status = Switch.Engine.Events.TransactionStatus.Failed;
        failed.Reason.Set("INSUFFICIENT_FUNDS");
        failed.Echo.Set(new string('e', 64));
        failed.OrderNo.Set(new string('o', 32));
        failed.RequestType = RequestType.Refund;
        failed.Duplicate = true;
        cases.Add(failed);
        ResultFields rejected = succeeded;
        rejected.Reject = RejectCode.DailyLimitExceeded;
        rejected.RejectField = RequestField.Amount;
        rejected.TransactionId = 0;
        rejected.FeeFen = -5;
        rejected.Echo.Set("");
        cases.Add(rejected);
        cases.Add(new ResultFields { FeedNo = 3, Status = Switch.Engine.Events.TransactionStatus.Unknown });

        byte[] record = new byte[FeedRecord.Bytes];
        foreach (ResultFields fields in cases)
        {
            FeedRecord.Write(fields, record);
            Assert.True(FeedRecord.IsIntact(record));
            ResultFields read = FeedRecord.Read(record);
            Assert.Equal(fields.FeedNo, read.FeedNo);
            Assert.Equal(ResultMapping.ToResult(fields).ToByteArray(), TransferResultEncoderTests.Encode([read]));
        }
        record[100] ^= 1; // one flipped bit fails the record's check
        Assert.False(FeedRecord.IsIntact(record));
    }

    /// <summary>
    /// The live heap after full collections. The large object heap is compacted too: a freed large buffer left as a
    /// hole counts as free space, and a hole filled later would otherwise read as growth.
    /// </summary>
    internal static long HeapAfterCollection()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    internal static async Task PayOnAStreamAsync(RunningSwitch running, int count)
    {
        using DuplexStreamingCall<TransferRequest, TransferResult> call = running.Channel.DuplexStreaming(InstitutionMethods.Transact, As(AlipayKey, 600_000));
        Task<int> reading = Task.Run(async () =>
        {
            int succeeded = 0;
            await foreach (TransferResult r in call.ResponseStream.ReadAllAsync())
            {
                if (r.Status == TransactionStatus.Succeeded) succeeded++;
            }
            return succeeded;
        });
        for (int i = 0; i < count; i++)
        {
            TransferRequest request = Payment($"F-{i}", 100 + i % 100, account: $"62220000{i % 1000:D8}");
            request.Kind = RequestKind.AgreementPayment;
            await call.RequestStream.WriteAsync(request);
        }
        await call.RequestStream.CompleteAsync();
        Assert.Equal(count, await reading.WaitAsync(TimeSpan.FromMinutes(10)));
    }

    private static async Task<List<TransferResult>> ReadFeedAsync(RunningSwitch running, long afterFeedNo, int count)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using ServerStreamingCall<TransferResult> call = running.Channel.ServerStreaming(InstitutionMethods.Outcomes,
            new OutcomesRequest { AfterFeedNo = afterFeedNo }, As(AlipayKey) with { Timeout = null, CancellationToken = cts.Token });
        var outcomes = new List<TransferResult>(count);
        while (outcomes.Count < count && await call.ResponseStream.ReadAsync() is { } o) outcomes.Add(o);
        return outcomes;
    }
}

/// <summary>Measures the process's heap, so it runs alone (other tests' switches would be in the figure).</summary>
[Collection(Limits.MeasuresProcessMemory.Name)]
public sealed class OutcomeFeedMemoryTests : WithDataDirectory
{
    [Fact]
    public async Task A_reader_far_behind_costs_the_switch_no_memory_per_outcome()
    {
        // Outcomes written straight into the feed (as the output thread writes them), then read over the wire by a
        // reader far behind: 400,000 records (73 MiB on disk) must not pass through the switch's heap and stay there.
        // A first, smaller round warms what is paid once (buffers, pools, compiled code), so the measured round sees
        // only what grows with the outcomes.
        const int warmRecords = 65_536, records = 400_000;
        HostConfig config = TestConfig(Data) with { OutcomeFeed = new OutcomeFeedConfig { SegmentRecords = 65_536 } };
        await using RunningSwitch running = await RunningSwitch.StartAsync(config, Data);
        OutcomeFeed feed = running.Host.Feeds.For(1); // TENPAY: no payments in this test, so the test is its only writer
        await WriteAndReadAsync(running, feed, firstFeedNo: 1, warmRecords);
        long before = OutcomeFeedTests.HeapAfterCollection();
        await WriteAndReadAsync(running, feed, firstFeedNo: warmRecords + 1, records);
        long grownBytes = OutcomeFeedTests.HeapAfterCollection() - before;
        Assert.True(grownBytes < 8L << 20, $"the heap grew {grownBytes >> 10} KiB while {records * FeedRecord.Bytes >> 20} MiB of outcomes were written and read");
    }

    private static async Task WriteAndReadAsync(RunningSwitch running, OutcomeFeed feed, long firstFeedNo, int records)
    {
        var outcome = new ResultFields { RequestType = RequestType.AgreementPayment, Status = Switch.Engine.Events.TransactionStatus.Succeeded };
        long lastFeedNo = firstFeedNo + records - 1;
        for (long feedNo = firstFeedNo; feedNo <= lastFeedNo; feedNo++)
        {
            outcome.FeedNo = feedNo;
            outcome.TransactionId = feedNo;
            outcome.AmountFen = feedNo;
            outcome.FinalUs = 1_700_000_000_000_000 + feedNo;
            outcome.OrderNo.Set($"M-{feedNo}");
            feed.Append(outcome);
            if (feedNo % 4096 == 0) feed.Flush();
        }
        feed.Flush();

        long count = 0, sum = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using ServerStreamingCall<TransferResult> call = running.Channel.ServerStreaming(InstitutionMethods.Outcomes,
            new OutcomesRequest { AfterFeedNo = firstFeedNo - 1 }, As(TenpayKey) with { Timeout = null, CancellationToken = cts.Token });
        while (count < records && await call.ResponseStream.ReadAsync() is { } o)
        {
            Assert.Equal(firstFeedNo + count, o.FeedNo);
            count++;
            sum += o.AmountFen;
        }
        Assert.Equal(records, count);
        Assert.Equal((firstFeedNo + lastFeedNo) * records / 2, sum);
    }
}

/// <summary>
/// Real time plus what the test skipped: the engine's timers and the deadlines it sends banks keep running as on the
/// system clock, while a test can let days pass at once.
/// </summary>
internal sealed class SkippingClock : IClock
{
    private long _skippedUs;
    public long NowUs() => SystemClock.Instance.NowUs() + Volatile.Read(ref _skippedUs);
    public void Advance(long us) => Interlocked.Add(ref _skippedUs, us);
}
