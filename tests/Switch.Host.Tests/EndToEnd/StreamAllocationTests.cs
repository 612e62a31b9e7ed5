using Google.Protobuf;
using Switch.Contracts.V1;
using Switch.Grpc;
using Switch.Grpc.Client;
using Switch.Grpc.Framing;
using Xunit.Abstractions;
using static Switch.Host.Tests.EndToEnd.RunningSwitch;
using TransactionStatus = Switch.Contracts.V1.TransactionStatus;

namespace Switch.Host.Tests.EndToEnd;

/// <summary>
/// What the volume path allocates per transaction, measured through the real thing: Transact over a socket, the
/// journal on disk, the engine, the simulated banks' Exchange streams (in this process, as in the load harness's
/// run mode). Every GC collection at 180,000 a second queues every answer behind it, so this is held to a bound.
/// </summary>
[Collection(Limits.MeasuresProcessMemory.Name)]
public sealed class StreamAllocationTests(ITestOutputHelper output)
{
    private const int PerMessage = 64;

    /// <summary>A message encoded beforehand: the client side of the figure is then only reading the results.</summary>
    private readonly struct Encoded(byte[] bytes) : IMessageEncoder
    {
        public int CalculateSize() => bytes.Length;

        public int WriteTo(Span<byte> destination)
        {
            bytes.CopyTo(destination);
            return bytes.Length;
        }
    }

    private static byte[][] Messages(string prefix, int count)
    {
        var messages = new byte[count / PerMessage][];
        for (int m = 0; m < messages.Length; m++)
        {
            var batch = new TransferRequest();
            for (int i = 0; i < PerMessage; i++)
            {
                TransferRequest payment = Payment($"{prefix}-{m * PerMessage + i}", 100 + i, bank: (i % 2 == 0) ? "102" : "103", account: $"62220202{i:D8}");
                payment.Kind = RequestKind.AgreementPayment;
                batch.Batch.Add(payment);
            }
            messages[m] = batch.ToByteArray();
        }
        return messages;
    }

    /// <summary>Sends the messages on one Transact stream, reads every result; returns how many succeeded.</summary>
    private static async Task<int> TransactAsync(RunningSwitch running, byte[][] messages)
    {
        CallOptions options = As(AlipayKey, 120_000);
        options.Headers!.Add(TransactBatch.InstitutionBatchMaxHeader, PerMessage.ToString());
        using DuplexStreamingCall<TransferRequest, TransferResult> call = running.Channel.DuplexStreaming(InstitutionMethods.Transact, options);
        Task<int> reading = Task.Run(async () =>
        {
            int succeeded = 0;
            await foreach (TransferResult message in call.ResponseStream.ReadAllAsync())
            {
                if (message.Batch.Count == 0) succeeded += message.Status == TransactionStatus.Succeeded ? 1 : 0;
                foreach (TransferResult r in message.Batch) succeeded += r.Status == TransactionStatus.Succeeded ? 1 : 0;
            }
            return succeeded;
        });
        foreach (byte[] message in messages) await call.RequestStream.WriteEncodedAsync(new Encoded(message));
        await call.RequestStream.CompleteAsync();
        return await reading.WaitAsync(TimeSpan.FromSeconds(120));
    }

    [Fact]
    public async Task A_streamed_payment_allocates_a_bounded_number_of_bytes_end_to_end()
    {
        // A table that holds every payment: no eviction into the archive in the figure.
        await using RunningSwitch running = await StartAsync(TestConfig("", rules: r => r with { TransactionCapacity = 1 << 16 }));
        const int Warm = 8_192, Measured = 32_768;
        byte[][] warm = Messages("WARM", Warm), measured = Messages("PAY", Measured);
        Assert.Equal(Warm, await TransactAsync(running, warm)); // compiles the path, connects the banks' streams

        long before = GC.GetTotalAllocatedBytes(precise: true);
        int succeeded = await TransactAsync(running, measured);
        long bytesPerPayment = (GC.GetTotalAllocatedBytes(precise: true) - before) / Measured;

        Assert.Equal(Measured, succeeded);
        output.WriteLine($"{bytesPerPayment} bytes allocated a payment (switch, banks and the client's reading together)");
        // With the generated messages on the volume path (a TransferResult per answer, a BankResponse per bank answer on
        // both sides) this measured 1,493-1,522 bytes; with those encoded and decoded by hand, 1,151-1,168; with the
        // institutions' requests decoded by hand too (no TransferRequest or string each), 848. Of the rest, the client's
        // reading of TransferResult objects is about 200, the simulated banks' ledger entry and BankRequest most of the rest.
        Assert.InRange(bytesPerPayment, 1, 1_000);
    }
}
