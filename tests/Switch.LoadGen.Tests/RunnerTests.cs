using Switch.Contracts.V1;

namespace Switch.LoadGen.Tests;

/// <summary>The runner against a fake target over real loopback sockets: what it measures and what it checks.</summary>
public sealed class RunnerTests
{
    private static RunOptions Options(Uri target, Transport transport, RateProfile? profile, int lanes = 1) => new()
    {
        Target = target,
        Transport = transport,
        Profile = profile,
        Lanes = lanes,
        Window = 1,
        MaxUnaryInFlight = 1,
        GraceSeconds = 20,
        ClosedSeconds = 1,
        Workload = new WorkloadOptions { Institutions = [new("ALIPAY", "k")], MixWeights = [1, 0, 0, 0] },
    };

    [Theory]
    [InlineData(Transport.Stream)]
    [InlineData(Transport.Unary)]
    public async Task The_open_loop_times_each_request_from_its_intended_send_time(Transport transport)
    {
        // The target serves one request per 40 ms (25/s); we ask for 50/s for 1 s, one request outstanding at most.
        // Request k is due at 20k ms but answered no sooner than 40(k+1) ms: its wait in the queue is latency.
        // Timed from when it was actually sent, every request would take about 40 ms.
        const int serviceMs = 40;
        await using FakeSwitch target = await FakeSwitch.StartAsync(new FakeBehaviour { ServiceMs = serviceMs });
        RunOutcome run = await new LoadRunner(Options(target.Address, transport, new ConstantProfile(50, 1)), null).RunAsync();
        Assert.Equal(50, run.Sent);
        Assert.Equal(50, run.Totals.Latency.Count);
        Assert.Equal(0, run.Lost);
        Assert.Equal(0, run.Duplicated);
        // The last request waits behind 49 others: at least 50 x 40 - 49 x 20 = 1020 ms after its intended time.
        Assert.True(run.Totals.Latency.MaxUs >= 1_000_000, $"max {run.Totals.Latency.MaxUs} us");
        // The median request (the 25th) waits at least 25 x 40 - 24 x 20 = 520 ms, far above the 40 ms service time.
        Assert.True(run.Totals.Latency.ValueAt(0.5) >= 500_000, $"p50 {run.Totals.Latency.ValueAt(0.5)} us");
        Assert.True(run.MaxSendLagMs >= 900, $"send lag {run.MaxSendLagMs} ms");
    }

    [Fact]
    public async Task The_closed_loop_times_from_the_actual_send()
    {
        await using FakeSwitch target = await FakeSwitch.StartAsync(new FakeBehaviour { ServiceMs = 20 });
        RunOutcome run = await new LoadRunner(Options(target.Address, Transport.Unary, null), null).RunAsync();
        Assert.InRange(run.Totals.Latency.Count, 1, 50 + 1); // 20 ms each, one at a time, for 1 s.
        // Each takes the 20 ms service time (less a timer's millisecond of slack), never the queue's seconds.
        Assert.True(run.Totals.Latency.ValueAt(0.5) >= 15_000, $"p50 {run.Totals.Latency.ValueAt(0.5)} us");
        Assert.True(run.MaxSendLagMs < 1_000, $"send lag {run.MaxSendLagMs} ms");
        Assert.Equal(0, run.Lost);
    }

    [Fact]
    public async Task The_warm_table_run_sends_exactly_the_count_asked_on_streams_and_ends_once_answered()
    {
        await using FakeSwitch target = await FakeSwitch.StartAsync(new FakeBehaviour());
        var log = new StringWriter();
        // A unary open-loop run's options: the warm run is closed-loop streams whatever is measured after it.
        RunOptions measured = Options(target.Address, Transport.Unary, new ConstantProfile(50, 1));
        var started = System.Diagnostics.Stopwatch.StartNew();
        long answered = await Readiness.WarmTableAsync(measured, 5_000, log);
        Assert.Equal(5_000, answered);
        Assert.Equal(5_000, target.Received);
        Assert.Contains("warm table: 5000 of 5000 answered", log.ToString());
        Assert.True(started.Elapsed < TimeSpan.FromMinutes(2), $"the warm run ended on its count, not its 24 h bound: {started.Elapsed}");
        Assert.Equal(0, await Readiness.WarmTableAsync(measured, 0, log));
        Assert.Equal(5_000, target.Received);
    }

    [Fact]
    public async Task A_duplicated_answer_a_lost_order_and_an_answer_for_an_order_never_sent_are_flagged()
    {
        // The third request is answered twice, the seventh never; one answer names an order never sent.
        await using FakeSwitch target = await FakeSwitch.StartAsync(new FakeBehaviour
        {
            AnswersFor = (_, index) => index switch { 2 => 2, 6 => 0, _ => 1 },
            AnswerAnUnsentOrder = true,
        });
        RunOptions options = Options(target.Address, Transport.Stream, new ConstantProfile(100, 0.1)) with { Window = 64, GraceSeconds = 2 };
        RunOutcome run = await new LoadRunner(options, null).RunAsync();
        Assert.Equal(10, run.Sent);
        Assert.Equal(1, run.Duplicated);
        Assert.Equal(1, run.Lost);
        Assert.Equal(1, run.Unexpected);
        Assert.Equal(9, run.Totals.Latency.Count); // A duplicate is not a second completion.
    }

    [Fact]
    public void A_second_answer_to_a_transfer_with_a_query_outstanding_is_the_query_s_answer()
    {
        var book = new OrderBook(16);
        var recorder = new ResultRecorder(book, 1, 1);
        ref OrderBook.Entry payment = ref book.At(0);
        payment = new OrderBook.Entry { Kind = Kind.Payment, Target = -1, PendingQuery = -1, Sent = true, IntendedTicks = 0 };
        recorder.OnStreamResult(new TransferResult { OrderNo = book.OrderNo(0), Status = TransactionStatus.Succeeded }, 1);
        ref OrderBook.Entry query = ref book.At(1);
        query = new OrderBook.Entry { Kind = Kind.Query, Target = 0, PendingQuery = -1, Sent = true };
        book.At(0).PendingQuery = 1;
        book.NoteIssued(1);
        recorder.OnStreamResult(new TransferResult { OrderNo = book.OrderNo(0), Status = TransactionStatus.Succeeded }, 2);
        Assert.Equal((0L, 0L), book.Audit());
        recorder.OnStreamResult(new TransferResult { OrderNo = book.OrderNo(0), Status = TransactionStatus.Succeeded }, 3);
        Assert.Equal((0L, 1L), book.Audit());
        Assert.Equal(2, recorder.Merge().Latency.Count);
    }

    /// <summary>An open loop's book is made before the run, every page of it (its requests are counted in advance); a
    /// closed loop's capacity is only a bound, so its pages come as requests reach them. Either way an entry is where
    /// its sequence number says, and unsent ones are not answers.</summary>
    [Fact]
    public void An_open_loop_s_book_is_made_whole_before_the_run_and_a_closed_loop_s_as_it_goes()
    {
        var whole = new OrderBook(200_000, preallocate: true);
        Assert.Equal(4, whole.PagesMade); // 65,536 requests a page
        Assert.False(whole.TryAt(150_000, out _, out _)); // made, but nothing sent there
        whole.At(150_000).Sent = true;
        Assert.True(whole.TryAt(150_000, out OrderBook.Entry[] page, out int index) && page[index].Sent);

        var asItGoes = new OrderBook(200_000);
        Assert.Equal(0, asItGoes.PagesMade);
        asItGoes.At(150_000).AmountFen = 7;
        Assert.Equal(1, asItGoes.PagesMade);
        Assert.Equal(7, asItGoes.At(150_000).AmountFen);
    }

    [Fact]
    public void A_refusal_s_reject_code_is_read_from_the_status_message()
    {
        Assert.Equal("DAILY_LIMIT_EXCEEDED", ResultRecorder.RejectCodeOf(new Switch.Grpc.Status(Switch.Grpc.StatusCode.InvalidArgument, "DAILY_LIMIT_EXCEEDED: amount_fen would take ...")));
        Assert.Null(ResultRecorder.RejectCodeOf(new Switch.Grpc.Status(Switch.Grpc.StatusCode.DeadlineExceeded, "Deadline Exceeded")));
        Assert.Null(ResultRecorder.RejectCodeOf(new Switch.Grpc.Status(Switch.Grpc.StatusCode.Unavailable, "connection refused: no")));
    }
}
