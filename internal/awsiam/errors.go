package awsiam

import (
	"errors"
	"slices"

	"github.com/aws/smithy-go"
)

// ErrUnsupported marks a call the AWS endpoint does not implement (an
// emulator's gap). Real IAM implements every call this package makes.
var ErrUnsupported = errors.New("operation not supported by this IAM endpoint")

// ErrNotOwned marks a resource of the desired name that the operator did not
// create and was not asked to adopt.
var ErrNotOwned = errors.New("not created by this operator")

// ErrPropagating marks a resource IAM has not yet made visible everywhere.
var ErrPropagating = errors.New("waiting for IAM to propagate a change")

// IsNotFound reports whether err says the resource does not exist.
func IsNotFound(err error) bool { return hasCode(err, "NoSuchEntity", "ResourceNotFoundException") }

// IsAlreadyExists reports whether err says a resource of that name exists.
func IsAlreadyExists(err error) bool { return hasCode(err, "EntityAlreadyExists") }

// IsDeleteConflict reports whether err says the resource is still in use.
func IsDeleteConflict(err error) bool { return hasCode(err, "DeleteConflict") }

// IsThrottled reports whether AWS throttled the call.
func IsThrottled(err error) bool {
	return hasCode(err, "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException")
}

// IsAccessDenied reports whether the operator's credentials lack permission,
// or AWS did not take them at all (see IsCredentialsRejected).
func IsAccessDenied(err error) bool {
	return hasCode(err, "AccessDenied", "AccessDeniedException", "UnauthorizedOperation") || IsCredentialsRejected(err)
}

// IsCredentialsRejected reports whether AWS refused the credentials
// themselves (expired, unknown, signed for another region or partition),
// which no grant mends.
func IsCredentialsRejected(err error) bool {
	return hasCode(err, "InvalidClientTokenId", "ExpiredToken", "UnrecognizedClientException", "SignatureDoesNotMatch")
}

// IsLimitExceeded reports whether an IAM quota was hit.
func IsLimitExceeded(err error) bool { return hasCode(err, "LimitExceeded") }

// IsUnsupported reports whether the endpoint does not implement the call.
func IsUnsupported(err error) bool {
	return errors.Is(err, ErrUnsupported) || hasCode(err, "InvalidAction", "NotImplemented", "UnknownOperationException")
}

// IsTerminal reports whether retrying the same call cannot succeed until a
// human changes the spec, the account or the permissions.
func IsTerminal(err error) bool {
	return errors.Is(err, ErrNotOwned) || errors.Is(err, ErrPathMismatch) || errors.Is(err, ErrClientIDMissing) ||
		errors.Is(err, ErrInvalidPolicy) || errors.Is(err, ErrAdoptionWouldRemove) || IsAccessDenied(err) || IsLimitExceeded(err) ||
		hasCode(err, "MalformedPolicyDocument", "ValidationError", "InvalidInput", "InvalidParameterValue",
			"PolicyNotAttachable", "UnmodifiableEntity")
}

// Code is the AWS error code of err, or "" when err is not an AWS API error.
func Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func hasCode(err error, codes ...string) bool {
	return slices.Contains(codes, Code(err))
}

// IsAWSError reports whether err came from a call to AWS, whatever its cause
// (an API error, a timeout, a refused connection).
func IsAWSError(err error) bool {
	var opErr *smithy.OperationError
	return errors.As(err, &opErr) || errors.Is(err, ErrUnsupported)
}
