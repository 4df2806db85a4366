"""FastAPI Users, its simplest setup: SQLAlchemy over aiosqlite, Bearer transport.

Two apps from one module, the same but for the strategy: ``jwt_app`` (its
``JWTStrategy``, PyJWT HS256; every request decodes the token, then loads
the user from the database) and ``redis_app`` (its ``RedisStrategy``: the
token is a key in Redis, then the user is loaded from the database).
``BENCH_TMP`` is a folder for the SQLite file.  No ``from __future__ import
annotations`` here: FastAPI must see the ``Annotated`` dependencies of these
closures as objects, not as strings naming locals.
"""

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import redis.asyncio
from fastapi import Depends, FastAPI
from fastapi.responses import PlainTextResponse
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    JWTStrategy,
    RedisStrategy,
    Strategy,
)
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

SECRET = "s" * 32
EMAIL, PASSWORD = "bench@example.com", "correct horse battery staple"


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


def remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def build(strategy_name: str) -> FastAPI:
    folder = os.environ.get("BENCH_TMP", "/tmp")
    path = os.path.join(folder, f"fastapi-users-{strategy_name}-{os.getpid()}.db")
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    session_maker = async_sessionmaker(engine, expire_on_commit=False)
    redis_client = redis.asyncio.from_url(
        os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0"), decode_responses=True
    )

    async def get_session() -> AsyncIterator[AsyncSession]:
        async with session_maker() as session:
            yield session

    async def get_user_db(
        session: Annotated[AsyncSession, Depends(get_session)],
    ) -> AsyncIterator[Any]:
        yield SQLAlchemyUserDatabase(session, User)

    async def get_user_manager(
        user_db: Annotated[Any, Depends(get_user_db)],
    ) -> AsyncIterator[UserManager]:
        yield UserManager(user_db)

    def get_strategy() -> Strategy[Any, Any]:
        if strategy_name == "redis":
            return RedisStrategy(redis_client, lifetime_seconds=3600)
        return JWTStrategy(secret=SECRET, lifetime_seconds=3600)

    backend = AuthenticationBackend(
        name=strategy_name,
        transport=BearerTransport(tokenUrl="auth/login"),
        get_strategy=get_strategy,
    )
    users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])
    current_user = users.current_user(active=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)
            await conn.run_sync(Base.metadata.create_all)
        async with session_maker() as session:
            manager = UserManager(SQLAlchemyUserDatabase(session, User))
            app.state.user = await manager.create(UserCreate(email=EMAIL, password=PASSWORD))
        yield
        await redis_client.aclose()
        await engine.dispose()
        remove(path)

    app = FastAPI(lifespan=lifespan)
    app.include_router(users.get_auth_router(backend), prefix="/auth")

    @app.get("/plain", response_class=PlainTextResponse)
    async def plain() -> str:
        return "ok"

    @app.get("/me", response_class=PlainTextResponse)
    async def me(user: Annotated[User, Depends(current_user)]) -> str:
        return str(user.id)

    @app.post("/_bench/login", response_class=PlainTextResponse)
    async def login() -> str:
        token = await get_strategy().write_token(app.state.user)
        return f"Authorization: Bearer {token}"

    return app


jwt_app = build("jwt")
redis_app = build("redis")
