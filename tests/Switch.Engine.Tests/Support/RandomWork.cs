using Switch.Engine.Events;
using Switch.Engine.Pipeline;
using Switch.Engine.Tests.Support;

namespace Switch.Engine.Tests.Support;

/// <summary>
/// A seeded mix of what a running switch sees: payments and payouts (order numbers repeat, so old orders are asked for
/// again), bank answers that succeed, fail or get lost, time passing, cut-overs and batch closes. Drives a real engine
/// through its ring; answers the bank requests the engine hands out.
/// </summary>
internal sealed class RandomWork(SwitchEngine engine, OutputRecorder outputs, ManualClock clock, int seed)
{
    private readonly Random _random = new(seed);
    private readonly List<OutputEvent> _pending = new();
    private int _step;

    public void Run(int steps)
    {
        for (int i = 0; i < steps; i++, _step++)
        {
            int roll = _random.Next(100);
            if (roll < 45)
            {
                string bank = _random.Next(3) switch { 0 => "102", 1 => "103584000011", _ => "308" };
                var type = _random.Next(4) == 0 ? RequestType.Payout : RequestType.AgreementPayment;
                engine.Client().PublishCopy(LogicHarness.Request(type, _random.Next(2) == 0 ? "ALIPAY" : "TENPAY",
                    $"O{_random.Next(1_000)}", _random.Next(1, 300_000), bank, $"ACC{_random.Next(40)}"));
            }
            else if (roll < 85 && _pending.Count > 0)
            {
                int pick = _random.Next(_pending.Count);
                OutputEvent request = _pending[pick];
                _pending.RemoveAt(pick);
                BankReply reply = request.Operation == BankOperation.Query
                    ? (BankReply)_random.Next(1, 5)
                    : _random.Next(5) == 0 ? BankReply.Failed : BankReply.Succeeded;
                if (_random.Next(10) != 0) // some answers are lost
                {
                    var answer = new InputEvent { Kind = EventKind.BankResult, TransactionId = request.TransactionId, Operation = request.Operation, Reply = reply };
                    answer.Reason.Set(reply == BankReply.Failed ? "INSUFFICIENT_FUNDS" : "");
                    engine.Client().PublishCopy(answer);
                }
            }
            else if (roll < 96)
            {
                clock.Advance(_random.Next(0, 1_500_000));
                engine.PublishTick();
            }
            else if (roll < 98)
            {
                var e = new InputEvent { Kind = EventKind.SetEndpointWeights, EndpointCount = 2 };
                e.BankRef.Set("102");
                e.Operator.Set("op-test");
                e.Note.Set("random cut-over");
                int w = _random.Next(0, 10_001);
                e.WeightsBps[0] = w;
                e.WeightsBps[1] = 10_000 - w;
                engine.Client().PublishCopy(e);
            }
            else
            {
                var close = new InputEvent { Kind = EventKind.CloseBatch };
                close.Operator.Set("op-test");
                close.Note.Set("random close");
                engine.Client().PublishCopy(close);
            }
            if (_step % 20 == 0) Collect();
        }
        Collect();
    }

    private void Collect()
    {
        Assert.True(engine.WaitUntilIdle(30_000), "engine did not go idle");
        Assert.Null(engine.Fault);
        foreach (OutputEvent o in outputs.Drain())
        {
            if (o.Kind == OutputKind.BankRequest) _pending.Add(o);
        }
    }
}
