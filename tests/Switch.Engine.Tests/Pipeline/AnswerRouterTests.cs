using Switch.Engine.Client;
using Switch.Engine.Events;

namespace Switch.Engine.Tests.Pipeline;

/// <summary>The answer router's flushes: a batched target hears of its answers once per output batch, and within a long
/// batch after at most MaxAnswersPerFlush answers.</summary>
public sealed class AnswerRouterTests
{
    private sealed class Batched : IBatchedAnswerTarget
    {
        public int Answers, Flushes, AnswersAtLastFlush;
        public bool AwaitsFlush { get; set; }
        public void OnAnswer(in OutputEvent answer) => Answers++;
        public void Flush()
        {
            Flushes++;
            AnswersAtLastFlush = Answers;
        }
    }

    private sealed class Single : IAnswerTarget
    {
        public int Answers;
        public void OnAnswer(in OutputEvent answer) => Answers++;
    }

    private static OutputEvent AnswerTo(long correlationId) => new() { Kind = OutputKind.Answer, CorrelationId = correlationId };

    [Fact]
    public void Each_batched_target_answered_in_a_batch_is_flushed_once_at_its_end_and_the_others_not_at_all()
    {
        var router = new AnswerRouter();
        var a = new Batched();
        var b = new Batched();
        var idle = new Batched();
        var unary = new Single();
        long ia = router.Register(a), ib = router.Register(b), iu = router.Register(unary);
        router.Register(idle);
        for (int i = 0; i < 10; i++)
        {
            router.Route(AnswerTo(ia));
            router.Route(AnswerTo(i % 2 == 0 ? ib : iu));
        }
        Assert.Equal(0, a.Flushes); // nothing visible before the batch's end
        router.Flush();
        Assert.Equal((1, 10), (a.Flushes, a.AnswersAtLastFlush));
        Assert.Equal((1, 5), (b.Flushes, b.AnswersAtLastFlush));
        Assert.Equal(0, idle.Flushes);
        Assert.Equal(5, unary.Answers);
        router.Flush(); // an empty batch flushes nobody
        Assert.Equal(1, a.Flushes);

        router.Route(AnswerTo(ib));
        router.Unregister(ib); // the stream ended within the batch: still flushed once, it drops what it holds
        router.Flush();
        Assert.Equal((2, 6), (b.Flushes, b.AnswersAtLastFlush));
        Assert.Equal(1, a.Flushes);
    }

    [Fact]
    public void A_long_batch_flushes_after_every_MaxAnswersPerFlush_answers()
    {
        var router = new AnswerRouter();
        var a = new Batched();
        long id = router.Register(a);
        for (int i = 0; i < 2 * AnswerRouter.MaxAnswersPerFlush + 7; i++) router.Route(AnswerTo(id));
        Assert.Equal((2, 2 * AnswerRouter.MaxAnswersPerFlush), (a.Flushes, a.AnswersAtLastFlush));
        router.Flush();
        Assert.Equal((3, 2 * AnswerRouter.MaxAnswersPerFlush + 7), (a.Flushes, a.AnswersAtLastFlush));
    }
}
