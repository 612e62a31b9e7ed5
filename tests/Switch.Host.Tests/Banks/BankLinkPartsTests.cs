using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Host.Banks;
using EngineOperation = Switch.Engine.Events.BankOperation;

namespace Switch.Host.Tests.Banks;

/// <summary>The link's parts below the stream: its queue of structs, its hand encoding of bank.proto (checked against the
/// generated parser), and its wake signal.</summary>
public sealed class BankLinkPartsTests
{
    private static OutputEvent Request(long id, EngineOperation operation, long amountFen, string account, int bankCode = 102, int attempt = 1,
        long deadlineUs = 1_765_000_000_000_000)
    {
        var e = new OutputEvent { Kind = OutputKind.BankRequest, TransactionId = id, Operation = operation, AmountFen = amountFen,
            BankCode = bankCode, Attempt = attempt, BankDeadlineUs = deadlineUs };
        e.Account.Set(account);
        return e;
    }

    private static BankRequest Expected(in OutputEvent e) => new()
    {
        TransactionId = e.TransactionId, Operation = (Contracts.V1.BankOperation)(int)e.Operation, AmountFen = e.AmountFen,
        Account = e.Account.IsEmpty ? "" : e.Account.ToString(), BankCode = e.BankCode, Attempt = e.Attempt, DeadlineUnixUs = e.BankDeadlineUs,
    };

    private static byte[] Encode(LinkQueue queue, int max, bool batch)
    {
        int count = queue.Peek(max, out QueuedRequest[] slots, out int start);
        var encoder = new Switch.Grpc.Framing.BatchFormEncoder<QueuedRequest, BankRequestFields>(slots, start, count, batch, new int[count]);
        byte[] bytes = new byte[encoder.CalculateSize()];
        Assert.Equal(bytes.Length, encoder.WriteTo(bytes));
        queue.Release(count);
        return bytes;
    }

    /// <summary>Edge values: zero fields (left out, as protobuf does), a negative int32 (ten bytes), long varints, a
    /// non-ASCII account, an account of the full 32 bytes.</summary>
    private static readonly OutputEvent[] Cases =
    [
        Request(1, EngineOperation.Debit, 100, "6222020200000001"),
        Request(long.MaxValue, EngineOperation.Credit, long.MaxValue, "账户-Zürich", bankCode: -5, attempt: int.MaxValue, deadlineUs: long.MaxValue),
        Request(300, EngineOperation.Query, 0, "", bankCode: 0, attempt: 0, deadlineUs: 0),
        Request(128, EngineOperation.Reverse, 16_384, new string('9', Text32.CapacityBytes), bankCode: 308, attempt: 2),
    ];

    [Fact]
    public void A_single_request_encodes_to_the_bytes_the_generated_type_parses_field_for_field()
    {
        var queue = new LinkQueue(8);
        foreach (OutputEvent e in Cases)
        {
            Assert.True(queue.TryEnqueue(e));
            BankRequest parsed = BankRequest.Parser.ParseFrom(Encode(queue, max: 1, batch: false));
            Assert.Equal(Expected(e), parsed);
            Assert.Equal(Expected(e).ToByteArray(), Encode(Enqueued(queue, e), max: 1, batch: false)); // Byte for byte as protobuf writes it.
        }
    }

    private static LinkQueue Enqueued(LinkQueue queue, in OutputEvent e)
    {
        Assert.True(queue.TryEnqueue(e));
        return queue;
    }

    [Fact]
    public void A_run_encodes_as_the_batch_form_in_queue_order_and_wraps_around_the_ring()
    {
        var queue = new LinkQueue(5);
        var sent = new List<BankRequest>();
        // Three rounds through a ring of five: runs stop at its end, so a batch never spans the wrap.
        for (int round = 0; round < 3; round++)
        {
            for (int i = 0; i < 4; i++) Assert.True(queue.TryEnqueue(Cases[(round + i) % Cases.Length]));
            while (queue.Count > 0)
            {
                BankRequest message = BankRequest.Parser.ParseFrom(Encode(queue, max: 3, batch: true));
                Assert.InRange(message.Batch.Count, 1, 3);
                Assert.Equal(new BankRequest { Batch = { message.Batch } }, message); // Nothing but the batch.
                sent.AddRange(message.Batch);
            }
        }
        Assert.Equal(Enumerable.Range(0, 3).SelectMany(round => Enumerable.Range(0, 4).Select(i => Expected(Cases[(round + i) % Cases.Length]))), sent);
    }

    [Fact]
    public void A_full_queue_refuses_and_takes_again_once_the_writer_releases()
    {
        var queue = new LinkQueue(2);
        Assert.True(queue.TryEnqueue(Cases[0]));
        Assert.True(queue.TryEnqueue(Cases[1]));
        Assert.False(queue.TryEnqueue(Cases[2]));
        Assert.Equal(2, queue.Peek(10, out _, out _));
        queue.Release(1);
        Assert.True(queue.TryEnqueue(Cases[2]));
        Assert.Equal(2, queue.Count);
    }

    [Fact]
    public void The_queue_grows_to_its_capacity_keeping_order_while_the_writer_reads_a_run_of_the_old_ring()
    {
        int capacity = 3 * LinkQueue.InitialSlots;
        var queue = new LinkQueue(capacity);
        for (int i = 0; i < LinkQueue.InitialSlots - 10; i++) Assert.True(queue.TryEnqueue(Request(1 + i, EngineOperation.Debit, 1, "A")));
        Assert.Equal(LinkQueue.InitialSlots - 10, queue.Peek(LinkQueue.InitialSlots, out QueuedRequest[] first, out int firstStart));
        queue.Release(LinkQueue.InitialSlots - 20); // The head well into the ring: the next adds wrap round.
        Assert.Equal(10, queue.Peek(100, out QueuedRequest[] run, out int runStart));
        long[] before = Enumerable.Range(runStart, 10).Select(i => run[i].TransactionId).ToArray();
        int added = 0;
        while (queue.TryEnqueue(Request(10_000 + added, EngineOperation.Credit, 2, "B"))) added++; // Doubles, then doubles again.
        Assert.Equal(capacity - 10, added);
        Assert.Equal(before, Enumerable.Range(runStart, 10).Select(i => run[i].TransactionId)); // The writer's run, untouched.
        queue.Release(10);
        var ids = new List<long>();
        while (queue.Peek(700, out QueuedRequest[] slots, out int start) is var n and > 0)
        {
            ids.AddRange(Enumerable.Range(start, n).Select(i => slots[i].TransactionId));
            queue.Release(n);
        }
        Assert.Equal(Enumerable.Range(0, capacity - 10).Select(i => 10_000L + i), ids);
        Assert.Same(first, run);
        Assert.Equal(0, firstStart);
    }

    [Fact]
    public async Task The_queue_wakes_a_writer_that_found_it_empty_when_told_to_after_arrivals_and_a_wake_before_the_wait_is_kept()
    {
        var queue = new LinkQueue(4);
        Assert.Equal(0, queue.Peek(4, out _, out _)); // The writer finds it empty...
        ValueTask waiting = queue.Arrived.WaitAsync();
        Assert.False(queue.WakeWriter()); // (nothing has come: it sleeps on)
        Assert.False(waiting.IsCompleted);
        Assert.True(queue.TryEnqueue(Cases[0]));
        Assert.True(queue.TryEnqueue(Cases[1]));
        Assert.False(waiting.IsCompleted); // ...arrivals alone leave it asleep...
        Assert.True(queue.WakeWriter()); // ...and the producer's wake, once it has queued them, wakes it.
        await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(queue.WakeWriter()); // Awake (it has not found the queue empty since): no second wake.

        queue.Arrived.Wake();
        queue.Arrived.Wake(); // Kept once, however many.
        Assert.True(queue.Arrived.WaitAsync().IsCompletedSuccessfully);
        Assert.False(queue.Arrived.WaitAsync().IsCompleted);
    }

    [Fact]
    public async Task The_connector_wakes_each_link_given_requests_once_at_the_end_of_the_batch_not_per_request()
    {
        // Links not started: the test plays each link's writer on its queue. The engine is not reached before Start.
        Engine.Business.SwitchConfig config = Configuration.HostConfig.EmbeddedDefault().Switch;
        await using var connector = new BankConnector(null!, config, (_, _) => new Uri("http://127.0.0.1:1"), maxQueuedPerEndpoint: 4_096,
            probeIntervalMs: 1_000, new Log(TextWriter.Null, TextWriter.Null));
        EndpointLink[] links = connector.Links.Take(3).ToArray();
        var waits = new ValueTask[links.Length];
        for (int i = 0; i < links.Length; i++)
        {
            Assert.Equal(0, links[i].Queue.Peek(100, out _, out _)); // Each writer found its queue empty and waits.
            waits[i] = links[i].Queue.Arrived.WaitAsync();
        }
        OutputEvent request = Request(1, EngineOperation.Debit, 100, "6222020000000001");
        for (long id = 1; id <= 30; id++)
        {
            // Ten requests for each of the first two links; the third gets none.
            request.TransactionId = id;
            (request.BankIndex, request.EndpointIndex) = id % 2 == 0 ? (0, 0) : (0, 1);
            connector.Dispatch(request);
            Assert.All(waits, w => Assert.False(w.IsCompleted)); // No wake per request.
        }
        Assert.Equal((links[0].Name, links[1].Name), (config.Banks[0].Endpoints[0].Name, config.Banks[0].Endpoints[1].Name));

        connector.EndBatch();

        await waits[0].AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await waits[1].AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(waits[2].IsCompleted); // Nothing for it: asleep.
        Assert.Equal((15, 15, 0), (links[0].Queued, links[1].Queued, links[2].Queued)); // The whole batch, for one message each.
        // The woken writers take their runs and find the queues empty again: the next batch wakes them again, once.
        for (int i = 0; i < 2; i++)
        {
            LinkQueue queue = links[i].Queue;
            queue.Release(queue.Peek(100, out _, out _));
            Assert.Equal(0, queue.Peek(100, out _, out _));
            waits[i] = queue.Arrived.WaitAsync();
        }
        connector.EndBatch(); // Nothing dispatched since: nobody woken.
        Assert.All(waits, w => Assert.False(w.IsCompleted));
        request.EndpointIndex = 0;
        connector.Dispatch(request);
        connector.EndBatch();
        await waits[0].AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(waits[1].IsCompleted);
    }

    [Fact]
    public async Task The_connector_hands_a_request_to_its_link_without_allocating()
    {
        // Links not started: nothing connects, the requests wait in their queues. The engine is not reached before Start.
        Engine.Business.SwitchConfig config = Configuration.HostConfig.EmbeddedDefault().Switch;
        await using var connector = new BankConnector(null!, config, (_, _) => new Uri("http://127.0.0.1:1"), maxQueuedPerEndpoint: 4_096,
            probeIntervalMs: 1_000, new Log(TextWriter.Null, TextWriter.Null));
        OutputEvent request = Request(1, EngineOperation.Debit, 100, "6222020000000001");
        request.BankIndex = 0;
        request.EndpointIndex = 0;
        connector.Dispatch(request); // JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (long id = 2; id <= 1_000; id++)
        {
            request.TransactionId = id;
            connector.Dispatch(request);
            if (id % 64 == 0) connector.EndBatch();
        }
        connector.EndBatch();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1_000, connector.Links.First().Queued);
    }
}
