using Akka.Actor;

namespace ActorSim.Actors;

/// <summary>Props from a constructor call the C# compiler compiled. <c>Props.Create(() => new X(a, b))</c>
/// takes an expression tree, and Akka compiles a delegate for each constructor argument every time it
/// is called (<c>ExpressionBasedParser.ParseCallArgs</c>): a bench at 4 VMs x 64 vCPUs JIT-compiled
/// ~3,200 such dynamic methods, ~500 per pipeline it started. <see cref="Of{T}"/> calls the factory
/// instead; each call of the factory must make a fresh actor (a restart calls it again).</summary>
public static class ActorProps
{
    public static Props Of<T>(Func<T> create) where T : ActorBase => Props.CreateBy(new Producer<T>(create));

    private sealed class Producer<T>(Func<T> create) : IIndirectActorProducer where T : ActorBase
    {
        public Type ActorType => typeof(T);
        public ActorBase Produce() => create();
        public void Release(ActorBase actor) { }
    }
}
