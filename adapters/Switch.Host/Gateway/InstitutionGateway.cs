using System.Threading.Channels;
using Switch.Contracts.V1;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Grpc;
using Switch.Grpc.Server;

namespace Switch.Host.Gateway;

/// <summary>
/// The institution API on the engine: authenticates every call, turns each request into an input event for
/// the authenticated institution (a caller can never name another), and routes the engine's answer back.
/// Each institution's requests pass its <see cref="InstitutionLimiter"/> first: a unary call or an Outcomes
/// subscription over a limit gets RESOURCE_EXHAUSTED naming the limit and never reaches the engine; a Transact
/// stream is paced instead (it stops reading, and HTTP/2 flow control carries the back-pressure to the client),
/// since failing a stream would also fail the requests behind the one over the limit.
/// </summary>
/// <param name="limits">Fair-use limits; null takes <see cref="GatewayLimits.Default"/>.</param>
public sealed class InstitutionGateway(SwitchEngine engine, ApiKeyAuthenticator auth, AnswerRouter answers, OutcomeFeeds feeds,
    int maxInFlightPerStream, GatewayLimits? limits = null)
{
    /// <summary>Longest pause of a paced stream between looks at its limits.</summary>
    private const int MaxPaceMs = 100;

    private readonly InstitutionLimiter _limiter = new(engine.Logic.Config.Institutions.Count, limits ?? GatewayLimits.Default);

    public InstitutionLimiter Limiter => _limiter;

    /// <summary>Outcomes read from disk and written per flush on the outcome stream (192 bytes each in the cursor).</summary>
    private const int OutcomesPerWrite = 1024;

    public GrpcRouter Map(GrpcRouter router) => router
        .MapUnary(InstitutionMethods.AgreementPayment, (r, c) => UnaryAsync(r, c, RequestType.AgreementPayment))
        .MapUnary(InstitutionMethods.Payout, (r, c) => UnaryAsync(r, c, RequestType.Payout))
        .MapUnary(InstitutionMethods.Refund, (r, c) => UnaryAsync(r, c, RequestType.Refund))
        .MapUnary(InstitutionMethods.Query, (r, c) => UnaryAsync(r, c, RequestType.Query))
        .MapDuplexStreaming(InstitutionMethods.Transact, TransactAsync)
        .MapServerStreaming(FeedResultMessage.Outcomes, OutcomesAsync);

    private async ValueTask<TransferResult> UnaryAsync(TransferRequest request, ServerCallContext context, RequestType type)
    {
        AuthenticatedInstitution institution = auth.Authenticate(context);
        if (request.Kind != RequestKind.Unspecified && ResultMapping.TypeOf(request.Kind) != type)
        {
            (RejectCode code, string message) = ResultMapping.KindRefused(request.Kind, type);
            throw new RpcException(ResultMapping.StatusOf(code), message);
        }
        Admission admission = _limiter.TryAdmit(institution.Index);
        if (admission != Admission.Admitted)
        {
            throw new RpcException(StatusCode.ResourceExhausted, _limiter.Describe(admission, institution.Index));
        }
        var target = new UnaryAnswer();
        long correlationId = answers.Register(target);
        try
        {
            if (!engine.TryClaim(out long sequence))
            {
                throw new RpcException(StatusCode.ResourceExhausted, "the switch's input queue is full; retry with back-off");
            }
            ResultMapping.Fill(ref engine.Slot(sequence), request, type, institution.CodeUtf8, correlationId);
            engine.Publish(sequence);
            OutputEvent answer = await target.Task.WaitAsync(context.CancellationToken);
            if (answer.Reject != RejectCode.None)
            {
                throw new RpcException(ResultMapping.StatusOf(answer.Reject), ResultMapping.RejectMessage(answer.Reject, answer.RejectField));
            }
            return ResultMapping.ToResult(answer);
        }
        finally
        {
            answers.Unregister(correlationId);
            _limiter.Release(institution.Index);
        }
    }

    private async ValueTask TransactAsync(ServerRequestStream<TransferRequest> requests, ServerResponseStream<TransferResult> responses,
        ServerCallContext context)
    {
        AuthenticatedInstitution institution = auth.Authenticate(context);
        var stream = new StreamAnswers(maxInFlightPerStream, _limiter, institution.Index);
        long correlationId = answers.Register(stream);
        try
        {
            Task writer = WriteResultsAsync(stream, responses, context.CancellationToken);
            while (await requests.ReadAsync() is { } request)
            {
                // Back-pressure: at most maxInFlightPerStream requests wait for the engine; then stop reading.
                await stream.InFlight.WaitAsync(context.CancellationToken);
                await AdmitStreamedAsync(stream, institution.Index, context.CancellationToken);
                long sequence;
                while (!engine.TryClaim(out sequence))
                {
                    if (engine.Fault is not null) throw new RpcException(StatusCode.Unavailable, "the switch engine has stopped");
                    await Task.Delay(1, context.CancellationToken);
                }
                ResultMapping.Fill(ref engine.Slot(sequence), request, ResultMapping.TypeOf(request.Kind), institution.CodeUtf8, correlationId);
                engine.Publish(sequence);
            }
            // The client has half-closed: deliver every outstanding answer, then end the call.
            for (int i = 0; i < maxInFlightPerStream; i++)
            {
                await stream.InFlight.WaitAsync(context.CancellationToken);
            }
            stream.Results.Writer.TryComplete();
            await writer;
        }
        finally
        {
            answers.Unregister(correlationId);
            stream.Results.Writer.TryComplete();
            stream.ReleaseHeld(); // answers that will never come back to this stream give their places back
        }
    }

    /// <summary>Waits until the institution's limits admit one more request of the stream.</summary>
    private async ValueTask AdmitStreamedAsync(StreamAnswers stream, int institution, CancellationToken cancel)
    {
        while (true)
        {
            Admission admission = _limiter.TryAdmit(institution);
            if (admission == Admission.Admitted)
            {
                stream.Hold();
                return;
            }
            long waitMs = admission == Admission.RateLimited ? _limiter.MsUntilToken(institution) : 1;
            await Task.Delay((int)Math.Clamp(waitMs, 1, MaxPaceMs), cancel);
        }
    }

    /// <summary>The stream's one writer: takes whatever answers are ready, writes them all, flushes once.</summary>
    private static async Task WriteResultsAsync(StreamAnswers stream, ServerResponseStream<TransferResult> responses, CancellationToken cancel)
    {
        ChannelReader<TransferResult> results = stream.Results.Reader;
        while (await results.WaitToReadAsync(cancel))
        {
            while (results.TryRead(out TransferResult? result))
            {
                await responses.WriteAsync(result, cancel);
                stream.InFlight.Release();
            }
            await responses.FlushAsync(cancel);
        }
    }

    private async ValueTask OutcomesAsync(OutcomesRequest request, ServerResponseStream<FeedResultMessage> responses, ServerCallContext context)
    {
        AuthenticatedInstitution institution = auth.Authenticate(context);
        if (request.AfterFeedNo is < 0 or long.MaxValue)
        {
            throw new RpcException(StatusCode.InvalidArgument, $"{ResultMapping.RejectName(RejectCode.InvalidField)}: after_feed_no must be 0 to {long.MaxValue - 1}");
        }
        // A subscription holds no in-flight place (it answers nothing), but opening one costs a rate token.
        Admission admission = _limiter.TryAdmit(institution.Index, holdsInFlight: false);
        if (admission != Admission.Admitted)
        {
            throw new RpcException(StatusCode.ResourceExhausted, _limiter.Describe(admission, institution.Index));
        }
        OutcomeFeed feed = feeds.For(institution.Index);
        // The subscriber's memory is its cursor's buffer, however far behind it reads: the rest stays on disk.
        using FeedCursor cursor = feed.OpenCursor(request.AfterFeedNo + 1, OutcomesPerWrite);
        var message = new FeedResultMessage(); // written straight from the record's bytes, one object per subscriber
        while (!context.CancellationToken.IsCancellationRequested)
        {
            switch (cursor.Read(out int count, out Task? changed))
            {
                case FeedRead.NoLongerKept:
                    throw new RpcException(StatusCode.OutOfRange, FeedNoLongerKept(feed, cursor.Next));
                case FeedRead.Damaged:
                    throw new RpcException(StatusCode.DataLoss,
                        $"after_feed_no: the outcome feed is damaged on disk at feed number {cursor.Next}; query those orders (operators: delete the feed's files and restart to rebuild it)");
            }
            for (int i = 0; i < count; i++)
            {
                cursor.Point(message, i);
                await responses.WriteAsync(message, context.CancellationToken);
            }
            if (count > 0)
            {
                await responses.FlushAsync(context.CancellationToken);
                continue;
            }
            await changed!.WaitAsync(context.CancellationToken);
        }
    }

    /// <summary>OUT_OF_RANGE's message: the oldest feed number kept, and how to go on from there.</summary>
    public static string FeedNoLongerKept(OutcomeFeed feed, long asked)
    {
        long oldest = feed.OldestFeedNo;
        return $"after_feed_no: feed number {asked} is no longer kept (outcomes are kept {feed.RetentionDays:0.##} days); " +
            $"the oldest kept is {oldest}: resume with after_feed_no {oldest - 1} and query older orders";
    }

    /// <summary>A Transact stream: answers queue for its writer; a semaphore bounds what is outstanding.</summary>
    private sealed class StreamAnswers : IAnswerTarget
    {
        private readonly InstitutionLimiter _limiter;
        private readonly int _institution;
        /// <summary>The institution's in-flight places this stream holds: taken per request, given back per answer.</summary>
        private int _held;

        public StreamAnswers(int maxInFlight, InstitutionLimiter limiter, int institution)
        {
            _limiter = limiter;
            _institution = institution;
            InFlight = new SemaphoreSlim(maxInFlight, maxInFlight);
            // Never more results queued than requests outstanding: the bound makes TryWrite always succeed.
            Results = Channel.CreateBounded<TransferResult>(new BoundedChannelOptions(maxInFlight) { SingleReader = true });
        }

        public SemaphoreSlim InFlight { get; }
        public Channel<TransferResult> Results { get; }

        public void Hold() => Interlocked.Increment(ref _held);

        /// <summary>At the stream's end: gives back every place still held; a late answer then gives back none.</summary>
        public void ReleaseHeld()
        {
            for (int left = Interlocked.Exchange(ref _held, 0); left > 0; left--)
            {
                _limiter.Release(_institution);
            }
        }

        public void OnAnswer(in OutputEvent answer)
        {
            // Decrement only while positive: the stream's end may have given every place back already.
            int held = Volatile.Read(ref _held);
            while (held > 0)
            {
                int seen = Interlocked.CompareExchange(ref _held, held - 1, held);
                if (seen == held)
                {
                    _limiter.Release(_institution);
                    break;
                }
                held = seen;
            }
            // Fails only once the stream has ended and nobody reads any more: the answer is then dropped
            // (the institution still finds the outcome on its feed or by query).
            _ = Results.Writer.TryWrite(ResultMapping.ToResult(answer));
        }
    }
}
