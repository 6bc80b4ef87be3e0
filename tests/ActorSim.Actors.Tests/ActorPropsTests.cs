using Akka.Actor;
using Akka.TestKit.Xunit2;

namespace ActorSim.Actors.Tests;

/// <summary><see cref="ActorProps.Of{T}"/>: the factory makes the actor, and makes a fresh one when the
/// actor restarts (Akka's contract for a producer).</summary>
public class ActorPropsTests : TestKit
{
    private sealed class Counted : ReceiveActor
    {
        private int _seen;

        public Counted(int instance)
        {
            Receive<string>(m => m == "fail", _ => throw new InvalidOperationException("restart me"));
            Receive<string>(_ => Sender.Tell((instance, ++_seen)));
        }
    }

    [Fact]
    public void The_factory_makes_the_actor_and_a_fresh_one_on_restart()
    {
        var made = 0;
        var actor = Sys.ActorOf(ActorProps.Of(() => new Counted(++made)));
        actor.Tell("hello");
        ExpectMsg((1, 1));
        actor.Tell("hello");
        ExpectMsg((1, 2));
        EventFilter.Exception<InvalidOperationException>().ExpectOne(() => actor.Tell("fail"));
        actor.Tell("hello");
        ExpectMsg((2, 1));
        Assert.Equal(2, made);
    }
}
