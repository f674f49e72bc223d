"""``/v1/customers/{customer_id}``: attributes in, merged profile out, erasure."""

from __future__ import annotations

from fastapi import Response, status

from service.api.deps import AdminKey, IngestKey, ProfilePolicyDep, ReadKey, SessionDep
from service.api.params import CustomerIdPath
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.customers import service
from service.customers.schemas import CustomerAttributesUpdate, CustomerRead

router = domain_router(prefix="/v1/customers", tags=["customers"])


@router.patch(
    "/{customer_id}",
    operation_id="patch_customer_attributes",
    summary="Merge attributes from one source",
    responses=error_responses(401, 403, 422),
)
def patch_customer(
    customer_id: CustomerIdPath,
    update: CustomerAttributesUpdate,
    session: SessionDep,
    policy: ProfilePolicyDep,
    _key: IngestKey,
) -> CustomerRead:
    """Merge the attributes into what the source sent before (null removes an attribute).
    Creates the customer if unknown."""
    return service.update_attributes(session, customer_id, update, policy, replace=False)


@router.put(
    "/{customer_id}",
    operation_id="put_customer_attributes",
    summary="Replace the attributes of one source",
    responses=error_responses(401, 403, 422),
)
def put_customer(
    customer_id: CustomerIdPath,
    update: CustomerAttributesUpdate,
    session: SessionDep,
    policy: ProfilePolicyDep,
    _key: IngestKey,
) -> CustomerRead:
    """Replace everything the source sent before; other sources are untouched."""
    return service.update_attributes(session, customer_id, update, policy, replace=True)


@router.get(
    "/{customer_id}",
    operation_id="get_customer",
    summary="Read a customer's profile and activity",
    responses=error_responses(401, 403, 404, 422),
)
def get_customer(
    customer_id: CustomerIdPath, session: SessionDep, policy: ProfilePolicyDep, _key: ReadKey
) -> CustomerRead:
    """The merged profile, each source's attributes, and an activity summary."""
    return service.get_customer(session, customer_id, policy)


@router.delete(
    "/{customer_id}",
    operation_id="erase_customer",
    summary="Erase a customer (right to be forgotten)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 422),
)
def erase_customer(customer_id: CustomerIdPath, session: SessionDep, _key: AdminKey) -> Response:
    """Delete every stored row about the customer: events, attributes and everything derived.
    Events sent again later are stored again: stop sending them first."""
    service.erase_customer(session, customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
