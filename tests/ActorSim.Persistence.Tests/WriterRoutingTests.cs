using ActorSim.Persistence.Journal;

namespace ActorSim.Persistence.Tests;

/// <summary>How the journal's calls are spread over its writers: a stream stays on one writer while it
/// has calls pending (so they commit in order), and idle streams go to the least busy writer.</summary>
public class WriterRoutingTests
{
    [Fact]
    public void A_stream_with_calls_pending_stays_on_its_writer()
    {
        var r = new WriterRouting(3);
        Assert.Equal(0, r.Route(["a"]));
        Assert.Equal(1, r.Route(["b"]));
        Assert.Equal(2, r.Route(["c"]));
        // Writer 0 is no less busy than the others, but a's earlier call is still pending there.
        Assert.Equal(0, r.Route(["a"]));
        Assert.Equal(0, r.Route(["a"]));
        Assert.Equal([3, 1, 1], r.Pending);
    }

    [Fact]
    public void A_stream_with_nothing_pending_goes_to_the_least_busy_writer()
    {
        var r = new WriterRouting(2);
        Assert.Equal(0, r.Route(["a"]));
        Assert.Equal(0, r.Route(["a"]));
        Assert.Equal(1, r.Route(["b"]));
        r.Done(0, ["a"]);
        r.Done(0, ["a"]);
        // a has nothing pending now: new streams go where the fewest calls wait (the first such writer
        // on a tie), and so does a.
        Assert.Equal(0, r.Route(["c"]));
        Assert.Equal(0, r.Route(["d"]));
        Assert.Equal(1, r.Route(["a"]));
        Assert.Equal([2, 2], r.Pending);
    }

    [Fact]
    public void A_call_naming_several_streams_follows_a_pending_one_and_takes_the_others_along()
    {
        var r = new WriterRouting(2);
        Assert.Equal(0, r.Route(["a"]));
        Assert.Equal(1, r.Route(["b"]));
        Assert.Equal(1, r.Route(["c", "b"]));
        // c now has a call pending on writer 1: its next call queues behind it.
        Assert.Equal(1, r.Route(["c"]));
        r.Done(1, ["b"]);
        r.Done(1, ["c", "b"]);
        r.Done(1, ["c"]);
        Assert.Equal([1, 0], r.Pending);
        Assert.Equal(1, r.Route(["c"]));
    }

    [Fact]
    public void One_writer_takes_every_call()
    {
        var r = new WriterRouting(0);
        Assert.Equal(1, r.Writers);
        Assert.Equal(0, r.Route(["a"]));
        Assert.Equal(0, r.Route(["b"]));
    }
}
