using System.Runtime.CompilerServices;
using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Engine.Client;
using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Grpc;
using Switch.Grpc.Framing;
using Switch.Grpc.Server;

namespace Switch.Host.Gateway;

using ResultEncoder = SingleFormEncoder<ResultFields, TransferResultFields>;

/// <summary>
/// The institution API on the engine: authenticates every call, turns each request into an input event for
/// the authenticated institution (a caller can never name another), and routes the engine's answer back.
/// Each institution's requests pass its <see cref="InstitutionLimiter"/> first: a unary call or an Outcomes
/// subscription over a limit gets RESOURCE_EXHAUSTED naming the limit and never reaches the engine; a Transact
/// stream is paced instead (it stops reading, and HTTP/2 flow control carries the back-pressure to the client),
/// since failing a stream would also fail the requests behind the one over the limit.
/// </summary>
/// <param name="limits">Fair-use limits; null takes <see cref="GatewayLimits.Default"/>.</param>
/// <param name="role">The node's role: streams end with NOT_PRIMARY when it leaves office; null: always the primary.</param>
public sealed class InstitutionGateway(EngineClient engine, ApiKeyAuthenticator auth, OutcomeFeeds feeds,
    int maxInFlightPerStream, GatewayLimits? limits = null, NodeRole? role = null)
{
    private readonly NodeRole _role = role ?? new NodeRole();

    /// <summary>Longest pause of a paced stream between looks at its limits.</summary>
    private const int MaxPaceMs = 100;

    // Made with the gateway, not at its first call: a standby taking office gets many first calls at once, two of them
    // could each make a map, and a connection counted in the one then dropped kept its place until it closed
    // (CONNECTION_LIMIT with fewer connections open than the cap).
    private readonly InstitutionConnections _connections = new(new InstitutionLimiter(engine.Engine.Logic.Config.Institutions.Count, limits ?? GatewayLimits.Default));
    private readonly MemoryGiveBack _giveBack = new();

    public InstitutionLimiter Limiter => _connections.Limiter;

    public ApiKeyAuthenticator Authenticator => auth;

    /// <summary>Collections run to give back the memory of ended streams' answers.</summary>
    public long MemoryCollections => _giveBack.Collections;

    public InstitutionConnections Connections => _connections;

    /// <summary>
    /// Authenticates the call and attributes its connection to the institution (CONNECTION_LIMIT past
    /// limits.maxConnectionsPerInstitution).
    /// </summary>
    private async ValueTask<AuthenticatedInstitution> AdmitCallerAsync(ServerCallContext context)
    {
        AuthenticatedInstitution institution = await auth.AuthenticateAsync(context);
        if (!Connections.TryAttribute(context.ConnectionId, context.ConnectionClosed, institution.Index))
        {
            throw new RpcException(StatusCode.ResourceExhausted,
                $"CONNECTION_LIMIT: institution {institution.Code} has {Limiter.Limits.MaxConnectionsPerInstitution} connections open " +
                "(limits.maxConnectionsPerInstitution); send more calls on the connections it has, or close one");
        }
        return institution;
    }

    /// <summary>Counts a stream of the institution (STREAM_LIMIT past limits.maxStreamsPerInstitution); close it with CloseStream.</summary>
    private void OpenStream(AuthenticatedInstitution institution)
    {
        if (!Limiter.TryOpenStream(institution.Index))
        {
            throw new RpcException(StatusCode.ResourceExhausted,
                $"STREAM_LIMIT: institution {institution.Code} has {Limiter.Limits.MaxStreamsPerInstitution} streams open " +
                "(limits.maxStreamsPerInstitution, Transact and Outcomes together); close one before opening another");
        }
    }

    /// <summary>Outcomes read from disk and written per flush on the outcome stream (192 bytes each in the cursor).</summary>
    private const int OutcomesPerWrite = 1024;

    public GrpcRouter Map(GrpcRouter router) => router
        // Unary requests decoded by hand and answers encoded from their fields, as on the stream: no message object or
        // string a call either way.
        .MapUnaryRaw(InstitutionMethods.AgreementPayment, (r, c) => UnaryAsync(r, c, RequestType.AgreementPayment))
        .MapUnaryRaw(InstitutionMethods.Payout, (r, c) => UnaryAsync(r, c, RequestType.Payout))
        .MapUnaryRaw(InstitutionMethods.Refund, (r, c) => UnaryAsync(r, c, RequestType.Refund))
        .MapUnaryRaw(InstitutionMethods.Query, (r, c) => UnaryAsync(r, c, RequestType.Query))
        .MapDuplexStreamingRaw(InstitutionMethods.Transact, TransactAsync) // requests decoded by hand: no object, no string each
        .MapServerStreaming(InstitutionMethods.Outcomes, OutcomesAsync);

    // Its box holds the 560-byte answer across the engine's wait: pooled (bounded per core by the runtime) rather than
    // allocated a call. The router awaits it once, as a pooled box requires.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask UnaryAsync(ServerRawRequest raw, ServerCallContext context, RequestType type)
    {
        // The request's fields point into its bytes (the router's copy, kept until this call's task ends: the fill has
        // run by then, or never will).
        ReadOnlyMemory<byte> message = raw.Message;
        if (!TransferRequestDecoder.TryDecodeSingle(message.Span, out RequestFields request))
        {
            TransferRequest parsed; // what the hand path leaves: the generated parser decides, and words a refusal, as before
            try
            {
                parsed = TransferRequest.Parser.ParseFrom(message.Span);
            }
            catch (InvalidProtocolBufferException e)
            {
                throw raw.Refuse(e);
            }
            request = TransferRequestDecoder.SingleFrom(parsed, out message);
        }
        // A standby's port serves its own router; this catches a call that began on the primary's just as it left office.
        RoleState role = _role.Current;
        if (!role.IsPrimary) throw role.Refusal(RolePort.Institution);
        AuthenticatedInstitution institution = await AdmitCallerAsync(context);
        var kind = (RequestKind)request.Kind;
        if (kind != RequestKind.Unspecified && ResultMapping.TypeOf(kind) != type)
        {
            (RejectCode code, string refusal) = ResultMapping.KindRefused(kind, type);
            throw new RpcException(ResultMapping.StatusOf(code), refusal);
        }
        Admission admission = Limiter.TryAdmit(institution.Index);
        if (admission != Admission.Admitted)
        {
            throw new RpcException(StatusCode.ResourceExhausted, Limiter.Describe(admission, institution.Index));
        }
        try
        {
            OutputEvent answer;
            try
            {
                // Awaited here, not in a helper: each async layer would box another copy of the 560-byte answer.
                answer = await engine.CallAsync(
                    new ResultMapping.DecodedFill(message, request, type, institution.CodeUtf8, InEngineTime(context.Deadline)), context.CancellationToken);
            }
            catch (Exception e) when (EngineError(e) is { } status)
            {
                throw status;
            }
            if (answer.Reject != RejectCode.None)
            {
                throw new RpcException(ResultMapping.StatusOf(answer.Reject), ResultMapping.RejectMessage(answer.Reject, answer.RejectField, answer.Reason));
            }
            await raw.RespondAsync(new ResultEncoder(ResultFields.From(answer))); // written here: no async layer carries its fields
        }
        finally
        {
            Limiter.Release(institution.Index);
        }
    }

    /// <summary>The engine client's refusals as statuses (their messages start with their codes), else null.</summary>
    internal static RpcException? EngineError(Exception e) => e switch
    {
        EngineBusyException => new RpcException(StatusCode.ResourceExhausted, e.Message),
        EngineStoppedException => new RpcException(StatusCode.Unavailable, e.Message),
        InputFillException => new RpcException(StatusCode.Internal, e.Message),
        _ => null,
    };

    private async ValueTask TransactAsync(ServerRawRequestStream requests, ServerResponseStream<TransferResult> responses,
        ServerCallContext context)
    {
        AuthenticatedInstitution institution = await AdmitCallerAsync(context);
        // Results in batches only to a caller that said it reads them (and how many a message).
        int resultBatchMax = BatchForm.ParseDeclared(context.RequestHeaders.GetValue(TransactBatch.InstitutionBatchMaxHeader))
            ?? throw new RpcException(StatusCode.InvalidArgument,
                $"{ResultMapping.RejectName(RejectCode.InvalidField)}: {TransactBatch.InstitutionBatchMaxHeader} must be 1 to {TransactBatch.MaxElements}");
        // Leaving office ends the stream at once with NOT_PRIMARY: results not yet written are not sent (the caller
        // queries those orders on the new primary), and nothing more is read.
        await _role.InOfficeAsync(context, RolePort.Institution, cancel => TransactAsync(institution, resultBatchMax, requests, responses, context, cancel));
    }

    private async ValueTask TransactAsync(AuthenticatedInstitution institution, int resultBatchMax, ServerRawRequestStream requests,
        ServerResponseStream<TransferResult> responses, ServerCallContext context, CancellationToken cancel)
    {
        OpenStream(institution);
        var stream = new StreamAnswers(maxInFlightPerStream, Limiter, institution.Index);
        long correlationId = engine.Answers.Register(stream);
        Task? writer = null;
        long published = 0; // requests published: each one's answer is garbage once the stream ends
        _giveBack.StreamOpened();
        // An ended call ends the writer's wait too (it waits on the answers, not on the call).
        CancellationTokenRegistration ended = cancel.UnsafeRegister(static s => ((StreamAnswers)s!).Results.Complete(), stream);
        try
        {
            writer = WriteResultsAsync(stream, responses, resultBatchMax, maxInFlightPerStream, cancel);
            RpcException? unreadable = null;
            var decoder = new TransferRequestDecoder();
            while (true)
            {
                try
                {
                    if (!await requests.ReadAsync(cancel)) break;
                    if (!decoder.TryDecode(requests.Message, out var malformed)) throw requests.Refuse(malformed!);
                }
                catch (RpcException e)
                {
                    // Bytes that are not a request end the reading, never the answers already due: those are
                    // written first, and the stream then ends with the precise error.
                    unreadable = Unreadable(e);
                    break;
                }
                // The decoded fields point into the message's bytes, valid until the next read: each request is in its
                // ring slot before that.
                if (decoder.Problem() is { } refusal)
                {
                    unreadable = refusal; // refused whole, like bytes that are not a request: the answers due still go out
                    break;
                }
                int inMessage = Math.Max(1, decoder.BatchCount); // the single form is one
                await PublishStreamedAsync(stream, institution, decoder, inMessage, correlationId, context.Deadline, cancel);
                published += inMessage;
            }
            // The client has half-closed (or sent what is not a request): deliver every outstanding answer, then end the call.
            for (int back = 0; back < maxInFlightPerStream;)
            {
                back += await stream.Window.TakeAsync(maxInFlightPerStream - back, cancel);
            }
            stream.Results.Complete();
            await writer;
            if (unreadable is not null) throw unreadable;
        }
        finally
        {
            ended.Dispose();
            engine.Answers.Unregister(correlationId);
            stream.Results.Complete();
            stream.ReleaseHeld(); // answers that will never come back to this stream give their places back
            Limiter.CloseStream(institution.Index);
            if (writer is not null) await writer.ContinueWith(static _ => { }, TaskScheduler.Default); // it ends with the call
            stream.DropQueued();
            _giveBack.StreamEnded(published); // the answers written and dropped alike
        }
    }

    /// <summary>A Transact message's requests into the engine, in order, as the stream's window and the institution's
    /// limits admit them (back-pressure: at most maxInFlightPerStream wait for the engine; then the stream stops reading).
    /// Places, admission and ring slots are taken for as many requests at once as are free: one look each per message
    /// when nothing is short, instead of one per request.</summary>
    private async ValueTask PublishStreamedAsync(StreamAnswers stream, AuthenticatedInstitution institution, TransferRequestDecoder decoder,
        int requests, long correlationId, DateTime deadlineUtc, CancellationToken cancel)
    {
        int done = 0;
        while (done < requests)
        {
            int places = await stream.Window.TakeAsync(requests - done, cancel);
            int admitted = await AdmitStreamedAsync(stream, institution.Index, places, cancel);
            if (admitted < places) stream.Window.Give(places - admitted);
            try
            {
                await engine.PublishRangeAsync(new StreamedFill(decoder, done, correlationId, institution.CodeUtf8, InEngineTime(deadlineUtc)), admitted, cancel);
            }
            catch (Exception e) when (EngineError(e) is { } status)
            {
                throw status; // the stream ends: its held places are given back by the caller's end of stream
            }
            done += admitted;
        }
    }

    /// <summary>Requests of a decoded Transact message from <paramref name="first"/> on into their slots (the single form: its
    /// one request). The decoder's fields point into its message's bytes, valid until its next read.</summary>
    private readonly struct StreamedFill(TransferRequestDecoder decoder, int first, long correlationId, byte[] institutionCode,
        DateTime clientDeadlineUtc) : IInputBatchFill
    {
        public void Fill(ref InputEvent slot, int index)
        {
            ref readonly RequestFields request = ref decoder.BatchCount == 0 ? ref decoder.Single : ref decoder.Element(first + index);
            ResultMapping.FillDecoded(ref slot, correlationId, decoder.Message.Span, request, ResultMapping.TypeOf((RequestKind)request.Kind),
                institutionCode, clientDeadlineUtc);
        }
    }

    /// <summary>
    /// The status for a request message that could not be read: MESSAGE_TOO_LARGE past the size limit, else
    /// MALFORMED_MESSAGE (not a TransferRequest, a truncated or compressed frame). The gRPC layer's detail follows.
    /// </summary>
    private static RpcException Unreadable(RpcException e) => e.StatusCode == StatusCode.ResourceExhausted
        ? new RpcException(StatusCode.ResourceExhausted, "MESSAGE_TOO_LARGE: " + e.Status.Detail)
        : new RpcException(StatusCode.InvalidArgument, "MALFORMED_MESSAGE: " + e.Status.Detail);

    /// <summary>Waits until the institution's limits admit at least one more request of the stream, and admits as many of
    /// <paramref name="wanted"/> as they allow then; returns how many.</summary>
    private async ValueTask<int> AdmitStreamedAsync(StreamAnswers stream, int institution, int wanted, CancellationToken cancel)
    {
        while (true)
        {
            Admission admission = Limiter.TryAdmit(institution, wanted, out int admitted);
            if (admission == Admission.Admitted)
            {
                stream.Hold(admitted);
                return admitted;
            }
            long waitMs = admission == Admission.RateLimited ? Limiter.MsUntilToken(institution) : 1;
            await Task.Delay((int)Math.Clamp(waitMs, 1, MaxPaceMs), cancel);
        }
    }

    /// <summary>The stream's one writer: takes whatever answers were handed over, writes them all (up to
    /// <paramref name="batchMax"/> a message, never waiting to fill one), flushes once. The answers are encoded from
    /// their fields (no message objects); the slots they are taken into grow to the most a message has carried.</summary>
    private static async Task WriteResultsAsync(StreamAnswers stream, ServerResponseStream<TransferResult> responses, int batchMax,
        int maxInFlight, CancellationToken cancel)
    {
        BatchHandoff<ResultFields> results = stream.Results;
        int slotsMax = Math.Min(batchMax, maxInFlight); // never more ready at once than are outstanding
        var slots = new ResultFields[Math.Min(slotsMax, 64)];
        var elementBytes = new int[slots.Length];
        while (await results.WaitAsync())
        {
            while (true)
            {
                int count = results.Take(slots);
                if (count == 0) break;
                stream.Taken(count);
                // An ended call (client gone, deadline) would take writes into the void: its queue is dropped instead.
                cancel.ThrowIfCancellationRequested();
                await responses.WriteEncodedAsync(new BatchFormEncoder<ResultFields, TransferResultFields>(slots, 0, count, batch: count > 1, elementBytes), cancel);
                stream.Window.Give(count);
                if (count == slots.Length && slots.Length < slotsMax)
                {
                    Array.Resize(ref slots, Math.Min(slots.Length * 2, slotsMax));
                    elementBytes = new int[slots.Length];
                }
            }
            await responses.FlushAsync(cancel);
        }
        cancel.ThrowIfCancellationRequested(); // the call ended: the handoff was completed for it, not by the stream's end
    }

    /// <summary>
    /// The call's deadline on the engine's clock, which stamps the journaled record it is compared with (the two
    /// differ only where a test runs the engine on a clock of its own).
    /// </summary>
    private DateTime InEngineTime(DateTime deadlineUtc)
    {
        if (deadlineUtc == DateTime.MaxValue) return deadlineUtc;
        long engineNowUs = engine.Engine.Clock.NowUs();
        long remainingUs = (deadlineUtc - DateTime.UtcNow).Ticks / TimeSpan.TicksPerMicrosecond;
        return DateTime.UnixEpoch.AddTicks((engineNowUs + remainingUs) * TimeSpan.TicksPerMicrosecond);
    }

    private async ValueTask OutcomesAsync(OutcomesRequest request, ServerResponseStream<TransferResult> responses, ServerCallContext context)
    {
        AuthenticatedInstitution institution = await AdmitCallerAsync(context);
        if (request.AfterFeedNo is < 0 or long.MaxValue)
        {
            throw new RpcException(StatusCode.InvalidArgument, $"{ResultMapping.RejectName(RejectCode.InvalidField)}: after_feed_no must be 0 to {long.MaxValue - 1}");
        }
        // A subscription holds no in-flight place (it answers nothing), but opening one costs a rate token.
        Admission admission = Limiter.TryAdmit(institution.Index, holdsInFlight: false);
        if (admission != Admission.Admitted)
        {
            throw new RpcException(StatusCode.ResourceExhausted, Limiter.Describe(admission, institution.Index));
        }
        OpenStream(institution);
        try
        {
            await _role.InOfficeAsync(context, RolePort.Institution,
                cancel => new ValueTask(FollowFeedAsync(feeds.For(institution.Index), request.AfterFeedNo + 1, responses, cancel)));
        }
        finally
        {
            Limiter.CloseStream(institution.Index);
        }
    }

    /// <summary>Writes the feed from <paramref name="next"/> on, then live, until the call ends.</summary>
    private static async Task FollowFeedAsync(OutcomeFeed feed, long next, ServerResponseStream<TransferResult> responses, CancellationToken cancel)
    {
        // The subscriber's memory is its cursor's buffer, however far behind it reads: the rest stays on disk.
        using FeedCursor cursor = feed.OpenCursor(next, OutcomesPerWrite);
        var one = new ResultFields[1]; // each outcome encoded from its record's fields: no message object per outcome
        int[] elementBytes = new int[1];
        while (!cancel.IsCancellationRequested)
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
                one[0] = cursor[i];
                await responses.WriteEncodedAsync(new BatchFormEncoder<ResultFields, TransferResultFields>(one, 0, 1, batch: false, elementBytes), cancel);
            }
            if (count > 0)
            {
                await responses.FlushAsync(cancel);
                continue;
            }
            await changed!.WaitAsync(cancel);
        }
    }

    /// <summary>OUT_OF_RANGE's message: the oldest feed number kept, and how to go on from there.</summary>
    public static string FeedNoLongerKept(OutcomeFeed feed, long asked)
    {
        long oldest = feed.OldestFeedNo;
        return $"after_feed_no: feed number {asked} is no longer kept (outcomes are kept {feed.RetentionDays:0.##} days); " +
            $"the oldest kept is {oldest}: resume with after_feed_no {oldest - 1} and query older orders";
    }

    /// <summary>A Transact stream: answers are handed to its writer a batch at a time; its window bounds what is outstanding.</summary>
    private sealed class StreamAnswers : IBatchedAnswerTarget
    {
        private readonly InstitutionLimiter _limiter;
        private readonly int _institution;
        /// <summary>The institution's in-flight places this stream holds: taken per request, given back per answer.</summary>
        private int _held;
        /// <summary>Places answered since the last flush, given back to the limiter together (the output thread's).</summary>
        private int _answeredUnreleased;

        public StreamAnswers(int maxInFlight, InstitutionLimiter limiter, int institution)
        {
            _limiter = limiter;
            _institution = institution;
            Window = new StreamWindow(maxInFlight);
            // Never more answers outstanding than the window's places: an answer's place comes back once the writer took it.
            Results = new BatchHandoff<ResultFields>(maxInFlight);
        }

        public StreamWindow Window { get; }
        public BatchHandoff<ResultFields> Results { get; }

        public bool AwaitsFlush { get; set; }

        public void Hold(int count) => Interlocked.Add(ref _held, count);

        /// <summary>At the stream's end: gives back every place still held; a late answer then gives back none.</summary>
        public void ReleaseHeld()
        {
            int left = Interlocked.Exchange(ref _held, 0);
            if (left > 0) _limiter.Release(_institution, left);
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
                    _answeredUnreleased++;
                    break;
                }
                held = seen;
            }
            // Fails only once the stream has ended and nobody reads any more: the answer is then dropped
            // (the institution still finds the outcome on its feed or by query).
            Results.TryAdd(ResultFields.From(answer));
        }

        /// <summary>On the output thread after its batch: the places answered go back to the limiter in one look, and the
        /// answers to the writer with one wake-up.</summary>
        public void Flush()
        {
            if (_answeredUnreleased > 0)
            {
                _limiter.Release(_institution, _answeredUnreleased);
                _answeredUnreleased = 0;
            }
            int handed = Results.Publish();
            if (handed > 0) _limiter.CountQueued(_institution, handed);
        }

        /// <summary>The writer took answers handed over.</summary>
        public void Taken(int count) => _limiter.CountQueued(_institution, -count);

        /// <summary>At the stream's end, the writer done: answers handed over and not written are dropped with it.</summary>
        public void DropQueued()
        {
            int dropped = Results.Drop();
            if (dropped > 0) _limiter.CountQueued(_institution, -dropped);
        }
    }
}
