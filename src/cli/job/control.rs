//! `job cancel`, `job finish`, `job requeue` and `job modify`.

use super::{CancelArgs, IdArgs, ModifyArgs};
use crate::cli::Ctx;
use crate::error::Error;

pub fn cancel(ctx: &Ctx, a: &CancelArgs) -> anyhow::Result<u8> {
    ctx.backend()?.cancel_job(a.id, a.message.as_deref().unwrap_or(""))?;
    ctx.message(&format!("Job {} canceled.", a.id))
}

pub fn finish(ctx: &Ctx, a: &CancelArgs) -> anyhow::Result<u8> {
    ctx.backend()?.finish_job(a.id, a.message.as_deref().unwrap_or(""))?;
    ctx.message(&format!("Job {} finished.", a.id))
}

pub fn requeue(ctx: &Ctx, a: &IdArgs) -> anyhow::Result<u8> {
    ctx.backend()?.requeue_job(a.id)?;
    ctx.message(&format!("Job {} requeued.", a.id))
}

pub fn modify(ctx: &Ctx, a: &ModifyArgs) -> anyhow::Result<u8> {
    let props = a.job.props().map_err(Error::InvalidArgument)?;
    let env = a.job.env();
    if props.is_empty() && env.is_empty() {
        return Err(Error::InvalidArgument(format!("nothing to change: give the properties to set, for example job modify {} /priority:Highest", a.id)).into());
    }
    ctx.backend()?.modify_job(a.id, &props, &env)?;
    ctx.message(&format!("Job {} modified.", a.id))
}
