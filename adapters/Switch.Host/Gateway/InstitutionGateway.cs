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
/// </summary>
public sealed class InstitutionGateway(SwitchEngine engine, ApiKeyAuthenticator auth, AnswerRouter answers, OutcomeFeeds feeds,
    int maxInFlightPerStream)
{
    /// <summary>Outcomes written per flush on the outcome stream.</summary>
    private const int OutcomesPerWrite = 1024;

    public GrpcRouter Map(GrpcRouter router) => router
        .MapUnary(InstitutionMethods.AgreementPayment, (r, c) => UnaryAsync(r, c, RequestType.AgreementPayment))
        .MapUnary(InstitutionMethods.Payout, (r, c) => UnaryAsync(r, c, RequestType.Payout))
        .MapUnary(InstitutionMethods.Refund, (r, c) => UnaryAsync(r, c, RequestType.Refund))
        .MapUnary(InstitutionMethods.Query, (r, c) => UnaryAsync(r, c, RequestType.Query))
        .MapDuplexStreaming(InstitutionMethods.Transact, TransactAsync)
        .MapServerStreaming(InstitutionMethods.Outcomes, OutcomesAsync);

    private async ValueTask<TransferResult> UnaryAsync(TransferRequest request, ServerCallContext context, RequestType type)
    {
        AuthenticatedInstitution institution = auth.Authenticate(context);
        if (request.Kind != RequestKind.Unspecified && ResultMapping.TypeOf(request.Kind) != type)
        {
            throw new RpcException(StatusCode.InvalidArgument, $"kind: {request.Kind} sent to the {type} method");
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
        }
    }

    private async ValueTask TransactAsync(ServerRequestStream<TransferRequest> requests, ServerResponseStream<TransferResult> responses,
        ServerCallContext context)
    {
        AuthenticatedInstitution institution = auth.Authenticate(context);
        var stream = new StreamAnswers(maxInFlightPerStream);
        long correlationId = answers.Register(stream);
        try
        {
            Task writer = WriteResultsAsync(stream, responses, context.CancellationToken);
            while (await requests.ReadAsync() is { } request)
            {
                // Back-pressure: at most maxInFlightPerStream requests wait for the engine; then stop reading.
                await stream.InFlight.WaitAsync(context.CancellationToken);
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

    private async ValueTask OutcomesAsync(OutcomesRequest request, ServerResponseStream<TransferResult> responses, ServerCallContext context)
    {
        AuthenticatedInstitution institution = auth.Authenticate(context);
        if (request.AfterFeedNo < 0)
        {
            throw new RpcException(StatusCode.InvalidArgument, "after_feed_no: must be >= 0");
        }
        OutcomeFeed feed = feeds.For(institution.Index);
        long next = request.AfterFeedNo + 1;
        var batch = new List<TransferResult>(OutcomesPerWrite);
        while (!context.CancellationToken.IsCancellationRequested)
        {
            batch.Clear();
            if (!feed.TryRead(next, OutcomesPerWrite, batch, out long oldest, out Task changed))
            {
                throw new RpcException(StatusCode.OutOfRange,
                    $"after_feed_no: outcomes before feed number {oldest} are no longer retained; query those orders");
            }
            foreach (TransferResult outcome in batch)
            {
                await responses.WriteAsync(outcome, context.CancellationToken);
            }
            if (batch.Count > 0)
            {
                next += batch.Count;
                await responses.FlushAsync(context.CancellationToken);
                continue;
            }
            await changed.WaitAsync(context.CancellationToken);
        }
    }

    /// <summary>A Transact stream: answers queue for its writer; a semaphore bounds what is outstanding.</summary>
    private sealed class StreamAnswers : IAnswerTarget
    {
        public StreamAnswers(int maxInFlight)
        {
            InFlight = new SemaphoreSlim(maxInFlight, maxInFlight);
            // Never more results queued than requests outstanding: the bound makes TryWrite always succeed.
            Results = Channel.CreateBounded<TransferResult>(new BoundedChannelOptions(maxInFlight) { SingleReader = true });
        }

        public SemaphoreSlim InFlight { get; }
        public Channel<TransferResult> Results { get; }

        public void OnAnswer(in OutputEvent answer)
        {
            // Fails only once the stream has ended and nobody reads any more: the answer is then dropped
            // (the institution still finds the outcome on its feed or by query).
            _ = Results.Writer.TryWrite(ResultMapping.ToResult(answer));
        }
    }
}
