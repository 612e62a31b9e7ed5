using System.Diagnostics;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Server;

namespace Switch.BankSim;

/// <summary>The bank endpoint API (switch.v1.BankEndpoint) served by a <see cref="SimulatedBank"/>.</summary>
internal sealed class BankEndpointService
{
    private readonly SimulatedBank _bank;

    public BankEndpointService(SimulatedBank bank) => _bank = bank;

    public GrpcRouter Map(GrpcRouter router) => router
        .MapUnary(BankEndpointMethods.Debit, (request, context) => UnaryAsync(BankOperation.Debit, request, context))
        .MapUnary(BankEndpointMethods.Credit, (request, context) => UnaryAsync(BankOperation.Credit, request, context))
        .MapUnary(BankEndpointMethods.Query, (request, context) => UnaryAsync(BankOperation.Query, request, context))
        .MapUnary(BankEndpointMethods.Reverse, (request, context) => UnaryAsync(BankOperation.Reverse, request, context))
        .MapDuplexStreaming(BankRequests.Exchange, (requests, responses, context) => ExchangeSession.RunAsync(_bank, requests, responses, context));

    /// <summary>
    /// One unary request: validate, admit, wait out the latency, then execute only if the gRPC deadline has not
    /// passed. A silent bank holds the call until the caller's deadline (bounded by MaxSilenceMs).
    /// </summary>
    private async ValueTask<BankResponse> UnaryAsync(BankOperation method, BankRequest request, ServerCallContext context)
    {
        BankLedger ledger = _bank.Ledger;
        BankRequestFields fields = BankRequestFields.Of(request);
        if (request.Operation != BankOperation.Unspecified && request.Operation != method)
        {
            ledger.CountInvalid();
            throw new RpcException(StatusCode.InvalidArgument, $"operation {request.Operation} does not match the method {method}.");
        }
        if (SimulatedBank.Problem(fields, method) is { } problem)
        {
            ledger.CountInvalid();
            throw new RpcException(StatusCode.InvalidArgument, problem);
        }
        if (!_bank.TryAdmit(fields, method, Stopwatch.GetTimestamp(), out long delayTicks, out BankAnswer? busy))
            return busy!.Value.ToMessage();

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, _bank.Stopping);
        bool executed = false;
        try
        {
            if (delayTicks > 0) await Task.Delay(Stopwatch.GetElapsedTime(0, delayTicks), cts.Token).ConfigureAwait(false);
            if (DateTime.UtcNow >= context.Deadline)
            {
                ledger.CountRefusedLate(); // Deadlines are sacred: the switch may already have called it failed.
                throw new RpcException(StatusCode.DeadlineExceeded, "Deadline Exceeded");
            }
            executed = true;
            if (_bank.Execute(fields, method, DateTime.UtcNow) is { } answer) return answer.ToMessage();

            // Executed, and silent: the caller learns nothing until its deadline.
            await Task.Delay(_bank.Options.MaxSilenceMs, cts.Token).ConfigureAwait(false);
            throw new RpcException(StatusCode.Unavailable, "The bank did not answer.");
        }
        catch (OperationCanceledException)
        {
            if (!executed) CountCanceledBeforeExecution(context);
            if (!context.CancellationToken.IsCancellationRequested && _bank.Stopping.IsCancellationRequested)
                throw new RpcException(StatusCode.Unavailable, "The bank simulator is shutting down.");
            throw;
        }
    }

    /// <summary>
    /// A client whose own deadline passes resets the stream a moment before our copy of the deadline fires, so
    /// a cancellation this close to the deadline is counted as late rather than as the caller leaving.
    /// </summary>
    private static readonly TimeSpan DeadlineSlack = TimeSpan.FromMilliseconds(100);

    private void CountCanceledBeforeExecution(ServerCallContext context)
    {
        // Canceled during the latency wait: not executed. Late if the deadline did it, abandoned if the caller left.
        bool late = context.Deadline != DateTime.MaxValue && DateTime.UtcNow + DeadlineSlack >= context.Deadline;
        if (late) _bank.Ledger.CountRefusedLate();
        else _bank.Ledger.CountAbandoned(1);
    }
}
